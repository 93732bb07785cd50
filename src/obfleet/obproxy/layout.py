"""Where OBProxy lives on a host and who it runs as.

An OBProxy cluster has an install path: each of its obproxies gets `<install path>/obproxy-
<version>`, the RPM's own layout under /home/admin by default, so an upgrade installs the new
version beside the old one. It also has a run-as user (`admin` by default, as OCP and OBD run
OBProxy): the files are that user's and the process runs as it, started from obfleet's root
session with `runuser`.

Both come from requests and end up in shell commands and in `rm -rf`, so both are checked here:
the install path is a plain absolute path outside the system's own directories, the user name a
plain login name.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from obfleet.hosts.shell import safe_path

DEFAULT_INSTALL_PATH = "/home/admin"  # the RPM's own layout: /home/admin/obproxy-<version>
DEFAULT_RUN_USER = "admin"
ROOT = "root"
# Top-level directories of the system itself: nothing of obfleet's is removed there...
SYSTEM_ROOTS = frozenset(
    {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "sys"}
    | {"usr"}
)
# ... nor installed there, nor where the system keeps changing data or clears it at boot.
NOT_FOR_INSTALLS = SYSTEM_ROOTS | {"var", "tmp", "lost+found", "snap", "mnt", "media"}
# Below those, the places that are meant for installed software.
SOFTWARE_DIRS = ("/usr/local/", "/var/lib/")
# Directories that hold more than one install: never removed themselves.
PROTECTED = frozenset({"/home/admin", "/home", "/root", "/opt", "/usr/local", "/var/lib", "/data"})
MAX_INSTALL_PATH = 200  # leaves room for /obproxy-<version>/<file> in 255 characters
RUN_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


class LayoutError(ValueError):
    """An install path or user that obfleet will not use; the message says why."""


def in_system_dir(path: str, roots: frozenset[str] = SYSTEM_ROOTS) -> bool:
    """Whether `path` (plain, absolute) is `/` or lies in one of the top-level `roots`."""
    parts = PurePosixPath(path).parts
    if len(parts) < 2:
        return True
    return parts[1] in roots and not path.startswith(SOFTWARE_DIRS)


def check_install_path(path: str) -> str:
    """An OBProxy cluster's install path: plain (absolute, normalized, letters, digits and
    `._+@=,:-`), at most MAX_INSTALL_PATH characters, outside the system's directories."""
    try:
        plain = safe_path(path)
    except ValueError as exc:
        raise LayoutError(str(exc)) from None
    if plain != path:
        raise LayoutError(f"path must be written without a trailing '/': {path!r}")
    if len(plain) > MAX_INSTALL_PATH:
        raise LayoutError(f"path is longer than {MAX_INSTALL_PATH} characters")
    if in_system_dir(plain, NOT_FOR_INSTALLS):
        raise LayoutError(
            f"{plain} is a system directory (or lies in one): choose a directory such as "
            "/home/admin, /opt/obproxy or /data/obproxy"
        )
    return plain


def home(install_path: str, version: str) -> str:
    """Where the obproxy of `version` lives under a cluster's install path."""
    return safe_path(f"{check_install_path(install_path)}/obproxy-{version}")


def overlaps(first: str, second: str) -> bool:
    """Whether one of two plain paths lies in the other (or they are the same): two OBProxies
    so placed would remove each other's files."""
    return first == second or first.startswith(f"{second}/") or second.startswith(f"{first}/")


def check_removable(path: str) -> str:
    """`path` if obfleet may delete it: a plain absolute path at least two levels deep, outside
    the system's own directories (a row's install path is data, and rm -rf cannot be undone)."""
    plain = safe_path(path)
    if len(PurePosixPath(plain).parts) < 3 or plain in PROTECTED or in_system_dir(plain):
        raise LayoutError(f"refusing to remove {plain}: not an OBProxy install path")
    return plain


def check_run_user(name: str) -> str:
    """A run-as user: a plain login name (lower-case letters, digits, `_`, `-`; 32 at most)."""
    if not RUN_USER.fullmatch(name):
        raise LayoutError(
            f"'{name}' is not a user name obfleet runs OBProxy as: lower-case letters, digits, "
            "'_' and '-', starting with a letter or '_', at most 32 characters"
        )
    return name
