"""Reading form bodies as they stream in, without ever spooling a file part to disk.

Starlette's `request.form()` writes large file parts to a temporary file, which would put a resident's
plaintext on disk (DESIGN 4). Here python-multipart's push parser turns the body into events; fields are
collected (bounded in number and size) and file parts are handed, piece by piece, to a sink the caller
provides, which encrypts them. Text must be valid UTF-8: anything else is a FormError, never guessed at.

Both parsers put the fields they could read into a dict the caller may pass as `into`, so that a page
refusing the form (for any reason, raised here or by the caller's sink) still shows what the resident typed.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from portal.i18n import N_

MAX_FIELDS = 40
MAX_FIELD_BYTES = 64 * 1024
MAX_FILE_NAME = 255

ERROR_MALFORMED = N_("The form could not be read. Please try again.")
ERROR_ENCODING = N_("The form contained text that could not be read. Please check what you wrote.")
ERROR_TOO_MANY_FILES = N_("Too many files. The largest number of files you can attach is %(limit)s.")
ERROR_FILES_TOO_LARGE = N_("What you sent is too large. Files may be at most %(limit)s MB together.")


class FormError(Exception):
    """The body is not a form we accept. `message` is a msgid; `limit` fills its placeholder."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


class FilesTooLargeError(FormError):
    """The files together are larger than the limit (the body limit leaves room for the fields as well)."""

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__(ERROR_FILES_TOO_LARGE, limit=max_bytes // (1024 * 1024))


class FileSink(Protocol):
    """Receives one file part. Implementations encrypt; nothing here keeps the bytes."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class FilePart:
    field: str
    filename: str
    content_type: str


OpenSink = Callable[[FilePart, dict[str, str]], Awaitable[FileSink]]


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(ERROR_ENCODING) from None


def parse_urlencoded(body: bytes, *, into: dict[str, str] | None = None) -> dict[str, str]:
    """Parse application/x-www-form-urlencoded; percent-escapes must decode to valid UTF-8.

    A field that is not UTF-8 fails the form, but only after the others are read into `into`.
    """
    pairs = [pair for pair in body.split(b"&") if pair]
    if len(pairs) > MAX_FIELDS:
        raise FormError(ERROR_MALFORMED)
    fields: dict[str, str] = {} if into is None else into
    unreadable = False
    for pair in pairs:
        name, _, value = pair.partition(b"=")
        raw_value = urllib.parse.unquote_to_bytes(value.replace(b"+", b" "))
        if len(raw_value) > MAX_FIELD_BYTES:
            raise FormError(ERROR_MALFORMED)
        try:
            fields[_decode(urllib.parse.unquote_to_bytes(name.replace(b"+", b" ")))] = _decode(raw_value)
        except FormError:
            unreadable = True
    if unreadable:
        raise FormError(ERROR_ENCODING)
    return fields


def safe_file_name(raw: str) -> str:
    """The last path component, without control characters, at most MAX_FILE_NAME characters.

    Browsers send only the base name, but a hand-made request can send `../../etc/passwd` or a name with
    line breaks; the name is only ever shown and offered as a download name, but it is cleaned here once.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
    return name[:MAX_FILE_NAME] or "file"


class _Events:
    """Collects the parser's callbacks as a list of events, consumed after each pushed piece."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self._header_field = b""
        self._header_value = b""
        self.headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        self.events.append(("headers", dict(self.headers)))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", bytes(data[start:end])))

    def on_part_end(self) -> None:
        self.events.append(("end", None))


async def read_multipart(
    stream: AsyncIterator[bytes],
    *,
    boundary: bytes,
    open_sink: OpenSink,
    max_files: int,
    max_file_bytes: int,
    into: dict[str, str] | None = None,
) -> dict[str, str]:
    """Parse a multipart body; fields are returned (and put in `into` as they arrive), file parts go to
    sinks from `open_sink`: at most `max_files` of them, `max_file_bytes` together.

    `open_sink` receives the fields read so far, so it can validate them and choose the keys to encrypt
    to: the form must therefore put its fields before its file inputs (ours do).
    """
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
    fields: dict[str, str] = {} if into is None else into
    field_name: str | None = None
    field_value = bytearray()
    sink: FileSink | None = None
    files = 0
    file_bytes = 0
    try:
        async for piece in stream:
            parser.write(piece)
            for kind, payload in events.events:
                if kind == "headers":
                    assert isinstance(payload, dict)
                    disposition, options = parse_options_header(payload.get(b"content-disposition", b""))
                    if disposition != b"form-data" or b"name" not in options:
                        raise FormError(ERROR_MALFORMED)
                    name = _decode(options[b"name"])
                    if b"filename" in options:
                        filename = _decode(options[b"filename"])
                        if not filename:
                            field_name, sink = None, None  # an empty file input: no file chosen
                            continue
                        files += 1
                        if files > max_files:
                            raise FormError(ERROR_TOO_MANY_FILES, limit=max_files)
                        content_type = payload.get(b"content-type", b"application/octet-stream")
                        part = FilePart(name, safe_file_name(filename), content_type.decode("latin-1")[:100])
                        sink = await open_sink(part, fields)
                        field_name = None
                    else:
                        if len(fields) >= MAX_FIELDS:
                            raise FormError(ERROR_MALFORMED)
                        field_name, sink = name, None
                        field_value.clear()
                elif kind == "data":
                    assert isinstance(payload, bytes)
                    if sink is not None:
                        file_bytes += len(payload)
                        if file_bytes > max_file_bytes:
                            raise FilesTooLargeError(max_bytes=max_file_bytes)
                        sink.write(payload)
                    elif field_name is not None:
                        field_value += payload
                        if len(field_value) > MAX_FIELD_BYTES:
                            raise FormError(ERROR_MALFORMED)
                elif kind == "end":
                    if sink is not None:
                        sink.close()
                        sink = None
                    elif field_name is not None:
                        fields[field_name] = _decode(bytes(field_value))
                        field_name = None
            events.events.clear()
        parser.finalize()
    except MultipartParseError:
        raise FormError(ERROR_MALFORMED) from None
    if parser.state != MultipartState.END or sink is not None or field_name is not None:
        raise FormError(ERROR_MALFORMED)  # the body ended before its closing boundary: truncated
    return fields


def multipart_boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise FormError(ERROR_MALFORMED)
    return options[b"boundary"]
