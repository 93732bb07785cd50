"""Reading an RPM the way OBD does: the header for identity, the payload for the files to ship.

The file format (lead, signature header, main header, compressed cpio payload) is read here
directly rather than through rpmfile: rpmfile cannot decode 64-bit tags (longarchivesize,
longfilesizes), merges the signature and main headers under clashing names, and reads a zstd
payload into memory whole. Everything is read as a stream, and the payload is expanded only up
to the size its header declares.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

import zstandard

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")

# No payload is expanded past this, whatever its header says: 4 x the default upload limit. At
# upload the bound is 4 x the configured upload limit, never above this (expansion_limit).
MAX_EXPANDED_BYTES = 8 * 1024**3
EXPANSION_FACTOR = 4
# Extraction stops this far past the payload size the header declares.
EXTRACT_SLACK = 1024**2

_LEAD = struct.Struct("!4sBBhh66shh16s")
_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_LEAD_SOURCE = 1
_HEADER_MAGIC = b"\x8e\xad\xe8"
_INTRO = struct.Struct("!3sB4xII")
_ENTRY = struct.Struct("!IIiI")
# rpm's own limits on a header (lib/header_internal.h: hdrchkTags, hdrchkData).
_MAX_TAGS = 0xFFFF
_MAX_HEADER_DATA = 256 * 1024**2

# Signature header tags.
_SIG_PAYLOADSIZE = 1007
_SIG_LONGARCHIVESIZE = 271
# Main header tags.
_NAME, _VERSION, _RELEASE, _ARCH = 1000, 1001, 1002, 1022
_OLDFILENAMES = 1027
_FILESIZES = 1028
_FILEMODES = 1030
_ARCHIVESIZE = 1046
_LONGARCHIVESIZE = 271
_SOURCEPACKAGE = 1106
_DIRINDEXES, _BASENAMES, _DIRNAMES = 1116, 1117, 1118
_PAYLOADFORMAT, _PAYLOADCOMPRESSOR = 1124, 1125
_LONGFILESIZES = 5008
_PAYLOADSIZE = 5112  # rpm >= 4.20: the uncompressed payload size, in the main header
_SIG_TAGS = frozenset({_SIG_PAYLOADSIZE, _SIG_LONGARCHIVESIZE})
_MAIN_TAGS = frozenset(
    {
        _NAME,
        _VERSION,
        _RELEASE,
        _ARCH,
        _OLDFILENAMES,
        _FILESIZES,
        _FILEMODES,
        _ARCHIVESIZE,
        _LONGARCHIVESIZE,
        _SOURCEPACKAGE,
        _DIRINDEXES,
        _BASENAMES,
        _DIRNAMES,
        _PAYLOADFORMAT,
        _PAYLOADCOMPRESSOR,
        _LONGFILESIZES,
        _PAYLOADSIZE,
    }
)
_INTS = {2: "B", 3: "H", 4: "I", 5: "Q"}  # INT8, INT16, INT32, INT64
_STRING, _STRING_ARRAY, _I18NSTRING = 6, 8, 9

COMPRESSORS = ("gzip", "bzip2", "xz", "lzma", "zstd")
# A cpio entry's bytes besides its data: the 110-byte header, name padding and data padding.
_CPIO_HEADER = 110
_CPIO_OVERHEAD = _CPIO_HEADER + 8
_CPIO_TRAILER = "TRAILER!!!"
_MAX_CPIO_NAME = 64 * 1024
_CHUNK = 1024 * 1024


class RpmError(ValueError):
    pass


def expansion_limit(max_upload_bytes: int) -> int:
    """How large an uploaded package's payload may be once decompressed."""
    return min(EXPANSION_FACTOR * max_upload_bytes, MAX_EXPANDED_BYTES)


@dataclass(frozen=True)
class RpmFile:
    """One entry of the header's file list."""

    path: PurePosixPath
    mode: int | None  # None when the header lists no modes
    size: int


@dataclass(frozen=True)
class RpmHeader:
    name: str
    version: str
    release: str
    arch: str
    is_source: bool = False
    archive_size: int | None = None  # the uncompressed payload size the header declares
    compressor: str = "gzip"
    files: tuple[RpmFile, ...] = ()

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

    @property
    def files_size(self) -> int:
        """The payload's size as the file list implies it: the files plus cpio's framing."""
        return (
            sum(f.size + _CPIO_OVERHEAD + len(str(f.path)) for f in self.files)
            + _CPIO_OVERHEAD
            + len(_CPIO_TRAILER)
        )

    @property
    def expanded_size(self) -> int:
        """The decompressed payload's size: the archive size the header declares, or, when
        it declares none, the size its file list implies."""
        return self.archive_size if self.archive_size is not None else self.files_size

    def has_file(self, suffix: str) -> bool:
        """Whether the file list holds a regular file whose path ends with suffix."""
        return any(
            str(f.path).endswith(suffix) and (f.mode is None or stat.S_ISREG(f.mode))
            for f in self.files
        )


def _read_exact(f: BinaryIO, size: int, what: str) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise RpmError(f"the RPM is truncated in its {what}")
    return data


def _strings(store: bytes, offset: int, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        end = store.find(b"\0", offset)
        if end < 0:
            raise RpmError("an RPM header string runs past the header")
        out.append(store[offset:end])
        offset = end + 1
    return out


def _value(kind: int, offset: int, count: int, store: bytes) -> object:
    if not 0 <= offset < len(store):
        raise RpmError("an RPM header entry points outside the header")
    if kind in _INTS:
        code = _INTS[kind]
        if offset + struct.calcsize(code) * count > len(store):
            raise RpmError("an RPM header entry runs past the header")
        return struct.unpack_from(f"!{count}{code}", store, offset)
    if kind == _STRING:
        return _strings(store, offset, 1)[0]
    if kind in (_STRING_ARRAY, _I18NSTRING):
        return _strings(store, offset, count)
    return None


def _read_header_structure(f: BinaryIO, wanted: frozenset[int], what: str) -> dict[int, object]:
    """The `wanted` tags of one header structure; f is left just past it."""
    magic, _version, count, size = _INTRO.unpack(_read_exact(f, _INTRO.size, what))
    if magic != _HEADER_MAGIC:
        raise RpmError(f"the RPM {what} has a bad magic number")
    if count > _MAX_TAGS or size > _MAX_HEADER_DATA:
        raise RpmError(f"the RPM {what} is larger than rpm allows")
    index = _read_exact(f, _ENTRY.size * count, what)
    store = _read_exact(f, size, what)
    tags: dict[int, object] = {}
    for tag, kind, offset, n in _ENTRY.iter_unpack(index):
        if tag in wanted and tag not in tags:
            tags[tag] = _value(kind, offset, n, store)
    return tags


def _text(tags: dict[int, object], tag: int, label: str) -> str:
    value = tags.get(tag)
    if isinstance(value, list):  # an i18n string: its first locale
        value = value[0] if value else None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else None
    if text is None or not NAME.match(text):
        raise RpmError(f"the RPM header field {label} is missing or not a plain name")
    return text


def _ints(tags: dict[int, object], tag: int) -> tuple[int, ...] | None:
    value = tags.get(tag)
    return value if isinstance(value, tuple) else None


def _byte_strings(tags: dict[int, object], tag: int) -> list[bytes]:
    value = tags.get(tag)
    return value if isinstance(value, list) else []


def _file_list(tags: dict[int, object]) -> tuple[RpmFile, ...]:
    basenames = _byte_strings(tags, _BASENAMES)
    if basenames:
        dirnames = _byte_strings(tags, _DIRNAMES)
        indexes = _ints(tags, _DIRINDEXES) or ()
        if len(indexes) != len(basenames) or any(i >= len(dirnames) for i in indexes):
            raise RpmError("the RPM header's file list is inconsistent")
        paths = [dirnames[i] + b for i, b in zip(indexes, basenames, strict=True)]
    else:
        paths = _byte_strings(tags, _OLDFILENAMES)
    sizes = _ints(tags, _LONGFILESIZES) or _ints(tags, _FILESIZES) or ()
    modes = _ints(tags, _FILEMODES)
    if len(sizes) != len(paths) or (modes is not None and len(modes) != len(paths)):
        raise RpmError("the RPM header's file sizes or modes do not match its file list")
    return tuple(
        RpmFile(
            PurePosixPath(p.decode("utf-8", "replace")),
            None if modes is None else modes[i],
            sizes[i],
        )
        for i, p in enumerate(paths)
    )


def _read(f: BinaryIO) -> RpmHeader:
    """The RPM's lead and headers; f is left at the start of the payload."""
    lead = _LEAD.unpack(_read_exact(f, _LEAD.size, "lead"))
    if lead[0] != _LEAD_MAGIC:
        raise RpmError("not an RPM (bad lead magic)")
    signature = _read_header_structure(f, _SIG_TAGS, "signature header")
    f.seek((8 - f.tell() % 8) % 8, 1)  # the signature header is padded to 8 bytes
    main = _read_header_structure(f, _MAIN_TAGS, "header")
    declared = [
        value[0]
        for tags, tag in (
            (signature, _SIG_PAYLOADSIZE),
            (signature, _SIG_LONGARCHIVESIZE),
            (main, _ARCHIVESIZE),
            (main, _LONGARCHIVESIZE),
            (main, _PAYLOADSIZE),
        )
        if (value := _ints(tags, tag))
    ]
    compressor = main.get(_PAYLOADCOMPRESSOR, b"gzip")
    payload_format = main.get(_PAYLOADFORMAT, b"cpio")
    if not isinstance(compressor, bytes) or compressor.decode("ascii", "replace") not in (
        COMPRESSORS
    ):
        raise RpmError(f"the RPM payload compressor {compressor!r} is not supported")
    if payload_format != b"cpio":
        raise RpmError(f"the RPM payload format {payload_format!r} is not supported")
    return RpmHeader(
        _text(main, _NAME, "name"),
        _text(main, _VERSION, "version"),
        _text(main, _RELEASE, "release"),
        _text(main, _ARCH, "arch"),
        is_source=lead[3] == _LEAD_SOURCE or _SOURCEPACKAGE in main,
        archive_size=max(declared) if declared else None,
        compressor=compressor.decode(),
        files=_file_list(main),
    )


def read_header(path: Path) -> RpmHeader:
    try:
        with path.open("rb") as f:
            return _read(f)
    except (struct.error, OSError) as exc:
        raise RpmError(f"not a readable RPM ({type(exc).__name__})") from exc


@dataclass(frozen=True)
class PayloadFile:
    path: PurePosixPath  # absolute path the RPM installs it to
    mode: int


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath("/" + name.lstrip("./").lstrip("/"))
    if ".." in path.parts:
        raise RpmError(f"the RPM payload holds an unsafe path: {name}")
    return path


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _decompressed(compressor: str, f: BinaryIO) -> _Readable:
    """The payload as a stream of cpio bytes, decompressed as it is read."""
    if compressor in ("xz", "lzma"):
        return lzma.LZMAFile(f)
    if compressor == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    if compressor == "bzip2":
        return bz2.BZ2File(f)
    return gzip.GzipFile(fileobj=f)


class _Bounded:
    """Reads the decompressed payload, refusing to go past `limit` bytes."""

    def __init__(self, raw: _Readable, limit: int, declared: int) -> None:
        self.raw = raw
        self.limit = limit
        self.declared = declared
        self.position = 0

    def read(self, size: int, what: str) -> bytes:
        if self.position + size > self.limit:
            raise RpmError(
                f"the RPM payload expands past {self.limit} bytes"
                f" (its header declares {self.declared}): refusing to extract it"
            )
        parts = []
        left = size
        while left:
            try:
                data = self.raw.read(min(left, _CHUNK))
            except (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError) as exc:
                raise RpmError(f"the RPM payload cannot be decompressed ({exc})") from exc
            if not data:
                raise RpmError(f"the RPM payload is truncated in {what}")
            parts.append(data)
            left -= len(data)
        self.position += size
        return b"".join(parts)

    def align(self) -> None:
        self.read((4 - self.position % 4) % 4, "padding")


def _cpio_entry(payload: _Bounded) -> tuple[str, int, int]:
    """The next entry's name, mode and data size (the header read, the data not yet)."""
    head = payload.read(_CPIO_HEADER, "a cpio header")
    if head[:6] not in (b"070701", b"070702"):
        raise RpmError(f"the RPM payload is not a cpio archive rpm writes ({head[:6]!r})")
    try:
        fields = [int(head[i : i + 8], 16) for i in range(6, _CPIO_HEADER, 8)]
    except ValueError as exc:
        raise RpmError("the RPM payload has a malformed cpio header") from exc
    mode, size, name_size = fields[1], fields[6], fields[11]
    if not 0 < name_size <= _MAX_CPIO_NAME:
        raise RpmError("the RPM payload has a malformed cpio header")
    raw_name = payload.read(name_size, "a cpio file name")
    payload.align()
    try:
        name = raw_name.rstrip(b"\0").decode()
    except UnicodeDecodeError as exc:
        raise RpmError("the RPM payload holds a file name that is not UTF-8") from exc
    return name, mode, size


def extract(path: Path, dest: Path, *, limit: int = MAX_EXPANDED_BYTES) -> Iterator[PayloadFile]:
    """Extract regular files under dest, mirroring their install paths (symlinks and
    directories are skipped: the OBProxy RPM ships bin/ and lib/ as plain files).

    The payload is decompressed as a stream and never past the size its header declares (plus
    EXTRACT_SLACK), nor past `limit`: a package whose payload expands further stops with an
    RpmError, leaving what was written so far for the caller to remove."""
    with path.open("rb") as f:
        try:
            header = _read(f)
        except struct.error as exc:
            raise RpmError(f"not a readable RPM ({type(exc).__name__})") from exc
        declared = header.expanded_size
        payload = _Bounded(
            _decompressed(header.compressor, f), min(limit, declared + EXTRACT_SLACK), declared
        )
        while True:
            name, mode, size = _cpio_entry(payload)
            if name == _CPIO_TRAILER:
                return
            if not stat.S_ISREG(mode):
                payload.read(size, name)
                payload.align()
                continue
            target_path = _safe_member(name)
            target = dest / target_path.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                left = size
                while left:
                    chunk = payload.read(min(left, _CHUNK), name)
                    out.write(chunk)
                    left -= len(chunk)
            payload.align()
            target.chmod(mode & 0o777)
            yield PayloadFile(target_path, mode & 0o777)
