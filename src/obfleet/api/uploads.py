"""Receiving a multipart file upload straight to disk, chunk by chunk, under a size limit.

Starlette's form parser would spool the whole file before the handler sees it; this one hashes
and counts as it writes, and stops the moment the limit is crossed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from obfleet.errors import ApiError, ErrorCode, bad_request


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int = 0
    sha1: str = ""


@dataclass
class _Receiver:
    field_name: str
    dest_dir: Path
    limit: int
    received: ReceivedFile | None = None
    _out: BinaryIO | None = None
    _digest: hashlib._Hash = field(default_factory=hashlib.sha1)
    _header_field: bytes = b""
    _header_value: bytes = b""
    _disposition: bytes = b""

    def on_part_begin(self) -> None:
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if params.get(b"name", b"").decode() != self.field_name or self.received is not None:
            return
        filename = os.path.basename(params.get(b"filename", b"").decode("utf-8", "replace"))
        fd, name = tempfile.mkstemp(dir=self.dest_dir, prefix=".upload-")
        self._out = os.fdopen(fd, "wb")
        self.received = ReceivedFile(Path(name), filename)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is None or self.received is None:
            return
        chunk = data[start:end]
        self.received.size += len(chunk)
        if self.received.size > self.limit:
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, self.limit)
        self._digest.update(chunk)
        self._out.write(chunk)

    def on_part_end(self) -> None:
        if self._out is not None and self.received is not None:
            self._out.close()
            self._out = None
            self.received.sha1 = self._digest.hexdigest()

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
        if self.received is not None:
            with contextlib.suppress(FileNotFoundError):
                self.received.path.unlink()


async def receive_file(
    request: Request, field_name: str, dest_dir: Path, limit: int
) -> ReceivedFile:
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "send the package as multipart/form-data with a 'file' field",
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(field_name, dest_dir, limit)
    callbacks = {
        name: getattr(receiver, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ParseError as exc:
        receiver.discard()
        raise bad_request(f"the multipart body is malformed: {exc}") from None
    except BaseException:
        receiver.discard()
        raise
    if receiver.received is None or not receiver.received.sha1:
        receiver.discard()
        raise bad_request(f"the multipart body has no '{field_name}' file part")
    return receiver.received
