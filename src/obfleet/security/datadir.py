"""The data dir holds the SQLite metadb (argon2 hashes, encrypted secrets), the secret key and
packages: readable by obfleet's user alone. Checked at every start, and made so."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("obfleet")

# Group and other permission bits: none may be set on anything in the data dir.
SHARED_BITS = 0o077


class DataDirError(ValueError):
    """The data dir cannot be made private to obfleet's user."""


def secure_data_dir(data_dir: Path) -> None:
    """Make the data dir 0700 and everything in it readable by its owner only (files 0600,
    executables extracted from packages 0700), creating it if missing."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fixed = [path for path in _walk(data_dir) if _make_private(path)]
    if fixed:
        log.warning(
            "data dir %s: took group/other permissions off %d entries (e.g. %s)",
            data_dir,
            len(fixed),
            fixed[0],
        )


def _walk(data_dir: Path) -> list[Path]:
    paths = [data_dir]
    for root, dirs, files in os.walk(data_dir):
        paths.extend(Path(root) / name for name in (*dirs, *files))
    return paths


def shared_entries(data_dir: Path) -> list[Path]:
    """What in the data dir other users may read or enter (`obfleet doctor` names them; a
    start makes them private)."""
    return [path for path in _walk(data_dir) if _is_shared(path.lstat().st_mode)]


def _is_shared(mode: int) -> bool:
    # Symlinks are left alone: their mode is not used.
    return not stat.S_ISLNK(mode) and bool(mode & SHARED_BITS)


def _make_private(path: Path) -> bool:
    """Clear the group/other bits of `path`. True when there were some."""
    mode = path.lstat().st_mode
    if not _is_shared(mode):
        return False
    try:
        path.chmod(stat.S_IMODE(mode) & ~SHARED_BITS)
    except OSError as exc:
        raise DataDirError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}) and cannot be "
            f"made private ({exc.strerror}): chmod go-rwx it, or run obfleet as its owner"
        ) from exc
    return True
