"""The generated password of the first admin: shown once, and kept in a file of the data dir
(mode 0600, like everything there) until admin first logs in, so a start whose output nobody
read does not lock the operator out."""

from __future__ import annotations

import os
from pathlib import Path

FILE_NAME = "admin-password"


def password_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def keep(data_dir: Path, password: str) -> Path:
    """Write the password to its file, readable by obfleet's user alone; the path."""
    path = password_file(data_dir)
    path.unlink(missing_ok=True)  # a file left from an earlier metadb: this one replaces it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return path


def forget(data_dir: Path) -> None:
    """Remove the file: admin has logged in (or has another password now)."""
    password_file(data_dir).unlink(missing_ok=True)


def notice(password: str, path: Path) -> str:
    """The lines that show the password, in a box so it stands out of the start-up log."""
    lines = [
        f"obfleet: created user 'admin' with password: {password}",
        "",
        "It is shown once. Until admin first logs in it is also kept in",
        f"{path} (mode 0600).",
        "Give admin a password of your own: obfleet user passwd admin",
    ]
    width = max(len(line) for line in lines)
    rule = "─" * (width + 2)
    body = [f"│ {line.ljust(width)} │" for line in lines]
    return "\n".join([f"┌{rule}┐", *body, f"└{rule}┘"])
