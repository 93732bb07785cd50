"""What an OBProxy RPM ships to a host: bin/ and lib/ of its OBProxy home, extracted once on
the obfleet side into a cache (no rpm needed on the host), with each file's mode and sha256."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from obfleet.packages import rpm

SHIPPED_DIRS = ("bin", "lib")  # what OBD's file_map ships; OBProxy creates the rest itself


@dataclass(frozen=True)
class PayloadFile:
    path: str  # relative to the OBProxy home: bin/obproxy
    mode: int
    sha256: str


@dataclass(frozen=True)
class Payload:
    root: Path  # the extracted home: root / file.path is the local copy
    files: tuple[PayloadFile, ...]


# One extraction per package at a time in this process (thread locks: the branches of a task
# wait in worker threads, whatever event loop they come from); the rename in _extract covers
# other processes.
_extracting: dict[str, threading.Lock] = {}


async def load_payload(cache_root: Path, sha1: str, rpm_file: Callable[[], Path]) -> Payload:
    """The files to ship from the RPM with that sha1, extracted once into the cache under
    `cache_root` and shared by every branch and task that installs it. `rpm_file` gives the
    RPM's local path, called only when the cache lacks it (it may have to fetch the file)."""
    return await asyncio.to_thread(_cached_payload, cache_root / sha1, sha1, rpm_file)


def _cached_payload(cache: Path, sha1: str, rpm_file: Callable[[], Path]) -> Payload:
    with _extracting.setdefault(sha1, threading.Lock()):
        if not (cache / "manifest.json").exists():
            _extract(rpm_file(), cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    return Payload(
        root=cache / "payload" / manifest["home"],
        files=tuple(PayloadFile(f["path"], f["mode"], f["sha256"]) for f in manifest["files"]),
    )


def _home_in(files: list[rpm.PayloadFile]) -> PurePosixPath:
    """The OBProxy home inside the payload: the directory whose bin/ holds obproxy
    (/home/admin/obproxy-<version> for obproxy-ce, /opt/taobao/install/... for others)."""
    homes = {f.path.parent.parent for f in files if f.path.match("bin/obproxy")}
    if len(homes) != 1:
        raise rpm.RpmError(f"the package holds {len(homes)} bin/obproxy files, not one")
    return homes.pop()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(rpm_path: Path, cache: Path) -> None:
    """Extract into a private directory and rename it into place, so a reader (another replica,
    a later task) finds either nothing or the complete cache entry."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.tmp-{secrets.token_hex(4)}")
    try:
        files = list(rpm.extract(rpm_path, tmp / "payload"))
        home = _home_in(files)
        shipped = []
        for f in files:
            relative = f.path.relative_to(home) if f.path.is_relative_to(home) else None
            if relative is not None and relative.parts[0] in SHIPPED_DIRS:
                local = tmp / "payload" / f.path.relative_to("/")
                shipped.append({"path": str(relative), "mode": f.mode, "sha256": _sha256(local)})
        manifest = {"home": str(home.relative_to("/")), "files": shipped}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        try:
            os.rename(tmp, cache)
        except OSError:
            if not (cache / "manifest.json").exists():
                raise  # not a concurrent extraction that won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
