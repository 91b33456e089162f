"""Photos residents upload, cleaned of everything but their pixels before they are encrypted.

A photo's metadata can name the resident: the GPS position, the camera's make, model and serial number, the
editing history in XMP, an EXIF thumbnail that still shows what was cropped away, a comment, a motion-photo
video after the JPEG. Unless the resident ticks "keep the original file", the portal decodes the photo and
encodes its pixels afresh, so nothing of the original file survives but what the pixels show. All of it
happens in memory (`io.BytesIO`): no plaintext photo reaches disk (DESIGN.md section 4).

Decisions, and why:

- The EXIF orientation is applied to the pixels first, so the cleaned photo is not shown on its side.
- ICC profiles are dropped. They carry free text (description, copyright), device manufacturer and model
  tags and a creation date, and a profile made by calibrating one scanner or screen is unique to it.
  The cost: a wide-gamut phone photo (Display P3) is shown as sRGB, a little less saturated. Converting it
  to sRGB would keep the colours but run littlecms on a profile an attacker wrote; not worth it for
  evidence of a broken street lamp.
- Animated PNG and WebP are refused (`AnimatedImageError`): keeping frames means per-frame metadata,
  timing, blending and a pixel budget multiplied by the frame count, for a kind of file a tip rarely
  needs. The caller asks for a still photo or "keep the original file".
- A JPEG keeps only its primary image. Phones add MPF secondary images (depth maps, HDR gain maps) and
  append motion-photo videos after the end of the image: each has metadata of its own or shows more than
  the photo, and none is needed to see it.
- Quality: JPEG 95 with the source's chroma subsampling (no detail the source had is lost to the re-encode,
  no bytes are spent on detail it never had), baseline; PNG is lossless; WebP stays lossless if it was,
  otherwise quality 90.

    ImageCleaningError            the photo could not be cleaned (corrupt, truncated, not what it claims)
     ├── ImageTooLargeError       more bytes or pixels than the cleaner takes on
     └── AnimatedImageError       an animated PNG or WebP

The errors carry a fixed message and no cause or context: Pillow's messages can quote bytes of the file.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageOps, JpegImagePlugin

# Pillow logs the metadata it parses at DEBUG level, values included (TiffImagePlugin: "Tag 271, Type: 2,
# Value: ..."): a server run with debug logging would write a photo's camera, serial number and position
# to its log (DESIGN 4). Its loggers stay at INFO whatever the root level is.
logging.getLogger("PIL").setLevel(logging.INFO)

# The caller buffers at most this many bytes of a photo in memory to clean it. A larger photo can only be
# sent with "keep the original file" ticked; otherwise the caller shows a translated error.
MAX_CLEANABLE_IMAGE_BYTES = 25 * 1024 * 1024
# Checked against the header before anything is decoded: a decoded image takes width * height * bands
# bytes (up to 200 MB for RGBA here), whatever the size of the file. 50 MP admits a 48 MP phone camera.
MAX_CLEANABLE_IMAGE_PIXELS = 50_000_000
JPEG_QUALITY = 95
WEBP_LOSSY_QUALITY = 90

_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_JPEG_MODES = frozenset({"L", "RGB", "CMYK"})
_WEBP_MODES = frozenset({"RGB", "RGBA"})
# What of `Image.info` the encoders may see: only what changes how the pixels look. Everything else is
# dropped so that no encoder can copy it over (Pillow's JPEG encoder writes `info["comment"]` by default).
_PIXEL_INFO_KEYS = ("transparency",)


class ImageCleaningError(ValueError):
    """A photo could not be cleaned of its metadata."""

    message = "could not clean the image"

    def __init__(self) -> None:
        super().__init__(self.message)


class ImageTooLargeError(ImageCleaningError):
    message = "could not clean the image: too large"


class AnimatedImageError(ImageCleaningError):
    message = "could not clean the image: animated"


def sniff_image_type(head: bytes) -> str | None:
    """The media type of an image by its magic bytes (12 are enough), or None if it is not one we take.

    The client's content type and file name are never consulted: both are whatever the sender wrote.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def strip_metadata(data: bytes, *, media_type: str) -> bytes:
    """The photo re-encoded from its pixels alone, upright, in the same format.

    `media_type` must be what `sniff_image_type` says of `data`; Pillow is only let open that format.
    Raises `ImageCleaningError` (or a subclass) for anything it cannot clean, never a Pillow exception.
    """
    if len(data) > MAX_CLEANABLE_IMAGE_BYTES:
        raise ImageTooLargeError()
    if media_type not in _PILLOW_FORMATS or sniff_image_type(data[:12]) != media_type:
        raise ImageCleaningError()
    try:
        return _reencode(data, media_type=media_type)
    except ImageCleaningError:
        raise
    except Image.DecompressionBombError:
        # Pillow's own check, at twice its MAX_IMAGE_PIXELS, fires inside Image.open before ours can.
        error: ImageCleaningError = ImageTooLargeError()
    except Exception:
        # Pillow raises OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError and more.
        error = ImageCleaningError()
    # Raised outside the except block so that no __context__ rides along into a log or error report.
    raise error


def _reencode(data: bytes, *, media_type: str) -> bytes:
    pillow_format = _PILLOW_FORMATS[media_type]
    # Image.open parses the header only (for WebP, libwebp also reserves the canvas, untouched, after Pillow
    # has refused anything past twice its MAX_IMAGE_PIXELS). Our lower limit is checked right after, before
    # load() decodes. Pillow's global state is left alone: MAX_IMAGE_PIXELS is per process, and turning
    # DecompressionBombWarning into an error with warnings.catch_warnings() would rewrite the process-wide
    # filters from a thread-pool thread (not thread-safe). That warning fires only above MAX_IMAGE_PIXELS,
    # 89 MP by default, which our limit already refuses.
    with Image.open(io.BytesIO(data), formats=[pillow_format]) as opened:
        width, height = opened.size
        if width * height > MAX_CLEANABLE_IMAGE_PIXELS:
            raise ImageTooLargeError()
        # An MPO (JPEG with secondary images) counts frames too; it keeps its primary image (see above).
        if pillow_format != "JPEG" and getattr(opened, "n_frames", 1) > 1:
            raise AnimatedImageError()
        subsampling = JpegImagePlugin.get_sampling(opened)  # -1, Pillow's default, for PNG and WebP
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)
        opened.info = {key: opened.info[key] for key in _PIXEL_INFO_KEYS if key in opened.info}
        pixels: Image.Image = opened
        out = io.BytesIO()
        if pillow_format == "JPEG":
            if pixels.mode not in _JPEG_MODES:
                pixels = pixels.convert("RGB")
            pixels.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=subsampling, progressive=False)
        elif pillow_format == "PNG":
            # Pillow writes text, eXIf and iCCP chunks only when asked to (pnginfo=, exif=, icc_profile=)
            # or when they are in `info`, which holds nothing but transparency now.
            pixels.save(out, format="PNG")
        else:
            if pixels.mode not in _WEBP_MODES:
                pixels = pixels.convert("RGBA")
            if _webp_is_lossless(data):
                pixels.save(out, format="WEBP", lossless=True)
            else:
                pixels.save(out, format="WEBP", quality=WEBP_LOSSY_QUALITY)
        return out.getvalue()


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a still WebP's image chunk is VP8L (lossless) rather than VP8 (lossy).

    Pillow does not say. RIFF chunks are a fourcc, a little-endian length and the payload padded to even.
    """
    offset = 12
    while offset + 8 <= len(data):
        fourcc = data[offset : offset + 4]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        offset += 8 + size + (size & 1)
    return False
