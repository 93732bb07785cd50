"""Building remote shell commands safely.

Every command obfleet runs on a host is a shell string, and many arguments come from API
requests (install paths, cluster names, parameters). Building those strings by hand invites shell
injection, so callers use `command(*argv)`, which quotes every argument, and validate paths with
`safe_path()` before they are used at all.
"""

from __future__ import annotations

import os
import re
import shlex

__all__ = ["Arg", "command", "quote", "safe_path"]

#: What `command()` accepts as one argument.
Arg = str | int | os.PathLike[str]

# Conservative on purpose: letters, digits and the punctuation real install paths use.
_PATH_CHARS = re.compile(r"[A-Za-z0-9._+@=,:/-]*")
_MAX_PATH = 4096


def quote(value: Arg) -> str:
    """Quote one value so the remote shell sees it as exactly one literal word."""
    return shlex.quote(os.fspath(value) if isinstance(value, os.PathLike) else str(value))


def command(*argv: Arg) -> str:
    """Join argv into a shell command with every argument quoted.

    `command("rm", "-f", path)` can never run a second command, whatever `path` contains.
    Combine the results with shell operators yourself: `command(...) + " && " + command(...)`.
    """
    if not argv:
        raise ValueError("command() needs at least the program name")
    return " ".join(quote(arg) for arg in argv)


def safe_path(path: str | os.PathLike[str]) -> str:
    """Return path (without a trailing slash) if it is a plain absolute path, else raise
    ValueError.

    Plain means: absolute, no `.`/`..` components, no empty components (`//`), no NUL or
    newline, only letters, digits and `._+@=,:-/`. This keeps request values from walking out
    of the directory they name or carrying shell or option syntax, even where a path ends up
    in a place quoting cannot protect (config files, other programs' arguments).
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        raise ValueError("path must be text")
    if not text.startswith("/"):
        raise ValueError(f"path must be absolute: {text!r}")
    if len(text) > _MAX_PATH:
        raise ValueError("path is too long")
    if not _PATH_CHARS.fullmatch(text):
        raise ValueError(f"path has characters outside [A-Za-z0-9._+@=,:/-]: {text!r}")
    parts = text.split("/")[1:]
    if text != "/" and text.endswith("/"):
        parts = parts[:-1]
    if text != "/" and any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"path must not contain empty, '.' or '..' components: {text!r}")
    return text.rstrip("/") or "/"
