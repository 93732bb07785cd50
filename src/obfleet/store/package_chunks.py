"""Package bytes kept in the metadb, in 1 MiB chunks, so every replica can ship any package.

The metadb is the one thing replicas are sure to share (a shared directory would be one more
mount to get right on every replica). Each replica keeps a local copy of what it has used, under
`<packages dir>/<sha1>/<file name>`: named by content, so a copy can never be of another
package that had the same name. A copy is made from the chunks (and checked: size and sha1)
when first needed. Neither writing nor reading holds more than one chunk in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode
from obfleet.store.db import Database
from obfleet.store.models.packages import SoftwarePackage
from obfleet.store.models.replicas import PackageChunk

CHUNK_BYTES = 1024 * 1024


class PackageCorrupt(RuntimeError):
    """The bytes read back are not the package that was uploaded."""


def local_path(packages_dir: Path, package: SoftwarePackage) -> Path:
    return packages_dir / package.sha1 / package.file_name


def store(session: Session, package: SoftwarePackage, upload: Path) -> None:
    """Write `upload` into the metadb as `package`'s chunks, checking that what was read is
    what was received (size and sha1) and that the metadb holds all of it."""
    digest, size, seq = hashlib.sha1(), 0, 0
    with upload.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            session.execute(
                insert(PackageChunk), {"package_id": package.id, "seq": seq, "data": chunk}
            )
            digest.update(chunk)
            size += len(chunk)
            seq += 1
    stored = session.scalar(
        select(func.sum(func.length(PackageChunk.data))).where(
            PackageChunk.package_id == package.id
        )
    )
    if (size, digest.hexdigest(), int(stored or 0)) != (package.size, package.sha1, package.size):
        raise PackageCorrupt(
            f"{package.file_name}: {size} bytes read (sha1 {digest.hexdigest()}) and "
            f"{stored or 0} stored, for {package.size} bytes received (sha1 {package.sha1})"
        )


def keep_local(packages_dir: Path, package: SoftwarePackage, upload: Path) -> None:
    """The uploading replica keeps the upload as its local copy."""
    path = local_path(packages_dir, package)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(upload, path)


def forget_local(packages_dir: Path, package: SoftwarePackage) -> None:
    """Remove this replica's copy of a deleted package (other replicas keep theirs until their
    data dir is cleaned: named by content, they are never taken for another package)."""
    path = local_path(packages_dir, package)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another package with the same bytes still uses it
        path.parent.rmdir()


def local_copy(db: Database, packages_dir: Path, package: SoftwarePackage) -> Path:
    """A file with the package's bytes on this replica: its local copy, made from the metadb's
    chunks if missing; for a package uploaded before packages went to the metadb, the file
    in the data dir of the replica that received it."""
    path = local_path(packages_dir, package)
    if path.is_file():
        return path
    if not _has_chunks(db, package):
        legacy = packages_dir / package.file_name
        if legacy.is_file():
            return legacy
        raise ApiError(
            ErrorCode.PACKAGE_NOT_FOUND,
            message=f"The software package {package.file_name} was uploaded to another replica "
            "before packages were kept in the metadb: upload it again.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        _write_chunks(db, package, tmp)
        os.replace(tmp, path)  # whole or absent, for a replica's concurrent branches
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _has_chunks(db: Database, package: SoftwarePackage) -> bool:
    with db.session() as session:
        first = select(PackageChunk.seq).where(PackageChunk.package_id == package.id).limit(1)
        return session.scalar(first) is not None


def _write_chunks(db: Database, package: SoftwarePackage, out: Path) -> None:
    """Copy the chunks into `out` one query at a time (one chunk in memory), and check them."""
    digest, size = hashlib.sha1(), 0
    with db.session() as session, out.open("wb") as f:
        for seq in range(-(-package.size // CHUNK_BYTES)):
            chunk = session.scalar(
                select(PackageChunk.data).where(
                    PackageChunk.package_id == package.id, PackageChunk.seq == seq
                )
            )
            if chunk is None:
                break
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    if (size, digest.hexdigest()) != (package.size, package.sha1):
        raise PackageCorrupt(
            f"{package.file_name} in the metadb is {size} bytes (sha1 {digest.hexdigest()}), "
            f"not the {package.size} bytes (sha1 {package.sha1}) uploaded"
        )
