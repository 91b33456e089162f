"""Encrypting file parts as they arrive: no plaintext ever reaches a disk (DESIGN 4, issue 3).

Each file gets its own age envelope to the tip's desks and the tipster key. The header is kept in memory
(it is small); the payload ciphertext goes to an anonymous temporary file, which holds only ciphertext,
until the request's one transaction copies it into FileChunk rows. Photos (JPEG, PNG, WebP, recognised
by their bytes) are cleaned of metadata in memory first, unless the resident asked to keep the original.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import crypto
from portal.formdata import FilePart, FormError
from portal.i18n import N_
from portal.submission.images import (
    MAX_CLEANABLE_IMAGE_BYTES,
    AnimatedImageError,
    ImageCleaningError,
    ImageTooLargeError,
    sniff_image_type,
    strip_metadata,
)

FILE_KIND = "file"
FILE_META_KIND = "file-meta"
ROW_SIZE = crypto.CHUNK_SIZE + 16  # one STREAM chunk per FileChunk row (boundaries need not align)
_SNIFF_BYTES = 16

ERROR_PHOTO_TOO_LARGE = N_(
    "This photo is too large for us to remove its hidden information (such as location). "
    "Make it smaller, or tick “Keep the original files” if you accept sending it as it is."
)
ERROR_PHOTO_ANIMATED = N_(
    "This is an animated image. Please send a still photo, or tick “Keep the original files” "
    "to send it as it is."
)
ERROR_PHOTO_UNREADABLE = N_(
    "This photo could not be read, so we could not remove its hidden information. "
    "Tick “Keep the original files” to send it as it is."
)


def new_id() -> str:
    return secrets.token_hex(16)


def file_subject(tip_id: str, file_id: str) -> str:
    return f"{tip_id}:{file_id}"


@dataclasses.dataclass
class EncryptedFile:
    """A file, encrypted: header, sealed metadata, and a spool of nonce and STREAM chunks."""

    file_id: str
    header: bytes
    meta: bytes
    spool: BinaryIO
    spool_size: int

    @property
    def row_count(self) -> int:
        return -(-self.spool_size // ROW_SIZE)

    def rows(self) -> Iterator[bytes]:
        """The spooled ciphertext in row-sized pieces, read one at a time as the transaction writes them."""
        self.spool.seek(0)
        while piece := self.spool.read(ROW_SIZE):
            yield piece

    def discard(self) -> None:
        self.spool.close()


class EncryptingSink:
    """One file part: sniffed, cleaned if it is a photo, encrypted chunk by chunk into a ciphertext spool."""

    def __init__(
        self,
        part: FilePart,
        *,
        tip_id: str,
        recipients: Sequence[crypto.X25519Recipient],
        keep_original: bool,
    ) -> None:
        self.part = part
        self.tip_id = tip_id
        self.file_id = new_id()
        self.recipients = recipients
        self.keep_original = keep_original
        self._head = bytearray()
        self._photo: bytearray | None = None
        self._photo_type: str | None = None
        self._encryptor: crypto.Encryptor | None = None
        # Ciphertext only; closed by discard() once the transaction has copied it.
        self._spool: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115
        self._header = b""
        self._size = 0
        self._spool_size = 0
        self.result: EncryptedFile | None = None

    def _start_encryptor(self) -> crypto.Encryptor:
        encryptor = crypto.Encryptor(self.recipients)
        start = encryptor.start()
        header, nonce = start[:-16], start[-16:]
        self._header = header
        self._write_ciphertext(nonce)
        self._write_ciphertext(
            encryptor.update(crypto.binding_line(FILE_KIND, file_subject(self.tip_id, self.file_id)))
        )
        return encryptor

    def _write_ciphertext(self, data: bytes) -> None:
        if data:
            self._spool.write(data)
            self._spool_size += len(data)

    def _decide(self) -> None:
        """Once the first bytes are in: a photo to clean is buffered in memory, anything else streams."""
        self._photo_type = sniff_image_type(bytes(self._head))
        head = bytes(self._head)
        self._head = bytearray()
        if self._photo_type is not None and not self.keep_original:
            self._photo = bytearray()
            self._buffer_photo(head)
        else:
            self._encryptor = self._start_encryptor()
            self._write_ciphertext(self._encryptor.update(head))

    def _buffer_photo(self, data: bytes) -> None:
        assert self._photo is not None
        self._photo += data
        if len(self._photo) > MAX_CLEANABLE_IMAGE_BYTES:
            raise FormError(ERROR_PHOTO_TOO_LARGE)

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._encryptor is not None:
            self._write_ciphertext(self._encryptor.update(data))
        elif self._photo is not None:
            self._buffer_photo(data)
        else:
            self._head += data
            if len(self._head) >= _SNIFF_BYTES:
                self._decide()

    def close(self) -> None:
        if self._encryptor is None and self._photo is None:
            self._decide()
        cleaned = False
        if self._photo is not None:
            assert self._photo_type is not None
            try:
                data = strip_metadata(bytes(self._photo), media_type=self._photo_type)
            except ImageTooLargeError:
                raise FormError(ERROR_PHOTO_TOO_LARGE) from None
            except AnimatedImageError:
                raise FormError(ERROR_PHOTO_ANIMATED) from None
            except ImageCleaningError:
                raise FormError(ERROR_PHOTO_UNREADABLE) from None
            self._photo = None
            self._size = len(data)
            cleaned = True
            self._encryptor = self._start_encryptor()
            self._write_ciphertext(self._encryptor.update(data))
        assert self._encryptor is not None
        self._write_ciphertext(self._encryptor.finalize())
        meta = {
            "name": self.part.filename,
            "type": self._photo_type or "application/octet-stream",
            "declared_type": self.part.content_type,
            "size": self._size,
            "cleaned": cleaned,
        }
        self.result = EncryptedFile(
            file_id=self.file_id,
            header=self._header,
            meta=crypto.seal(
                json.dumps(meta, ensure_ascii=False).encode("utf-8"),
                kind=FILE_META_KIND,
                subject=file_subject(self.tip_id, self.file_id),
                recipients=self.recipients,
            ),
            spool=self._spool,
            spool_size=self._spool_size,
        )

    def discard(self) -> None:
        self._photo = None
        self._spool.close()
