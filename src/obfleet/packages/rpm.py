"""Reading an RPM the way OBD does: the header for identity, the payload for the files to ship."""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rpmfile

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")


class RpmError(ValueError):
    pass


@dataclass(frozen=True)
class RpmHeader:
    name: str
    version: str
    release: str
    arch: str

    @property
    def build_number(self) -> str:
        """OCP's buildNumber is the release up to its first dot: 1919579 of 1919579.el7."""
        return self.release.split(".", 1)[0]

    @property
    def operating_system(self) -> str:
        """el7 of 1919579.el7; empty when the release names no OS."""
        return self.release.split(".", 1)[1] if "." in self.release else ""

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


def _text(headers: dict[str, object], key: str) -> str:
    value = headers.get(key)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not NAME.match(value):
        raise RpmError(f"the RPM header field {key} is missing or not a plain name")
    return value


def read_header(path: Path) -> RpmHeader:
    try:
        with rpmfile.open(str(path)) as rpm:
            headers = rpm.headers
    except Exception as exc:  # rpmfile raises many kinds (struct, KeyError, ...) on bad input
        raise RpmError(f"not a readable RPM ({type(exc).__name__})") from exc
    return RpmHeader(
        _text(headers, "name"),
        _text(headers, "version"),
        _text(headers, "release"),
        _text(headers, "arch"),
    )


@dataclass(frozen=True)
class PayloadFile:
    path: PurePosixPath  # absolute path the RPM installs it to
    mode: int


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath("/" + name.lstrip("./").lstrip("/"))
    if ".." in path.parts:
        raise RpmError(f"the RPM payload holds an unsafe path: {name}")
    return path


def extract(path: Path, dest: Path) -> Iterator[PayloadFile]:
    """Extract regular files under dest, mirroring their install paths (symlinks and
    directories are skipped: the OBProxy RPM ships bin/ and lib/ as plain files)."""
    with rpmfile.open(str(path)) as rpm:
        for member in rpm.getmembers():
            # rpmfile keeps only the permission bits in mode: ask it for the file kind.
            if member.isdir or member.issymlink:
                continue
            target_path = _safe_member(member.name)
            target = dest / target_path.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = rpm.extractfile(member)
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            target.chmod(stat.S_IMODE(member.mode))
            yield PayloadFile(target_path, stat.S_IMODE(member.mode))
