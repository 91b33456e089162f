"""Metadata stripping: planted canaries and GPS tags must not survive, the pixels must."""

from __future__ import annotations

import builtins
import io
import os
import random
import struct
import tempfile
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageChops, ImageFile, ImageStat, JpegImagePlugin, PngImagePlugin

from portal.submission.images import (
    MAX_CLEANABLE_IMAGE_BYTES,
    AnimatedImageError,
    ImageCleaningError,
    ImageTooLargeError,
    sniff_image_type,
    strip_metadata,
)

# Every canary holds this, so one search finds any of them; each is also checked to be in the source.
CANARY = b"LYKTA-CANARY"
MAKE = CANARY + b"-make"
MODEL = CANARY + b"-model-serial-4711"
THUMBNAIL_COMMENT = CANARY + b"-thumbnail"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + CANARY + b"-xmp</rdf:RDF></x:xmpmeta>"
COMMENT = CANARY + b"-comment"
IPTC = CANARY + b"-iptc-caption"
ICC = b"\x00\x00\x01\x00lcms" + CANARY + b"-icc-device-description" + b"\x00" * 64
LATITUDE = ((59, 1), (19, 1), (4512, 100))
LONGITUDE = ((18, 1), (4, 1), (1234, 100))


# --- building photos that carry metadata ---------------------------------------------------------------


def photo(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A smooth RGB picture (JPEG keeps it well), different in every channel."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    return Image.merge("RGB", (red, green, Image.new("L", size, 128)))


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **params)
    return out.getvalue()


def tiff_ifd(entries: list[tuple[int, int, int, bytes]], *, at: int, next_ifd: int) -> bytes:
    """One little-endian TIFF IFD at offset `at`, its out-of-line values right after it."""
    data_at = at + 2 + 12 * len(entries) + 4
    table, data = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += value + b"\0" * (len(value) % 2)
    return table + struct.pack("<I", next_ifd) + data


def ascii_entry(tag: int, text: bytes) -> tuple[int, int, int, bytes]:
    return (tag, 2, len(text) + 1, text + b"\0")


def rationals_entry(tag: int, values: tuple[tuple[int, int], ...]) -> tuple[int, int, int, bytes]:
    return (tag, 5, len(values), b"".join(struct.pack("<II", n, d) for n, d in values))


def exif_with_gps_and_thumbnail() -> bytes:
    """EXIF as a camera writes it: make and model, a GPS IFD, and IFD1 with a JPEG thumbnail."""
    thumbnail = encode(photo((16, 12)), "JPEG", comment=THUMBNAIL_COMMENT)
    gps_entries = [
        ascii_entry(1, b"N"),
        rationals_entry(2, LATITUDE),
        ascii_entry(3, b"E"),
        rationals_entry(4, LONGITUDE),
    ]

    def ifd0(gps_at: int, ifd1_at: int) -> bytes:
        entries = [
            ascii_entry(0x010F, MAKE),
            ascii_entry(0x0110, MODEL),
            (0x8825, 4, 1, struct.pack("<I", gps_at)),
        ]
        return tiff_ifd(entries, at=8, next_ifd=ifd1_at)

    def ifd1(at: int, thumbnail_at: int) -> bytes:
        entries = [
            (0x0103, 3, 1, struct.pack("<H", 6)),  # Compression: JPEG
            (0x0201, 4, 1, struct.pack("<I", thumbnail_at)),
            (0x0202, 4, 1, struct.pack("<I", len(thumbnail))),
        ]
        return tiff_ifd(entries, at=at, next_ifd=0)

    # An IFD's length does not depend on the offsets it holds: lay out with zeros, then build for real.
    gps_at = 8 + len(ifd0(0, 0))
    gps = tiff_ifd(gps_entries, at=gps_at, next_ifd=0)
    ifd1_at = gps_at + len(gps)
    thumbnail_at = ifd1_at + len(ifd1(ifd1_at, 0))
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0(gps_at, ifd1_at) + gps + ifd1(ifd1_at, thumbnail_at)
    return b"Exif\0\0" + tiff + thumbnail


def iptc_segment() -> bytes:
    """An APP13 Photoshop segment holding an IPTC caption, as news desks' software writes it."""
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(IPTC)) + IPTC
    block = b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iptc)) + iptc
    payload = b"Photoshop 3.0\0" + block + b"\0" * (len(block) % 2)
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_everything(**params: Any) -> bytes:
    jpeg = encode(
        photo(),
        "JPEG",
        quality=95,
        exif=exif_with_gps_and_thumbnail(),
        xmp=XMP,
        comment=COMMENT,
        icc_profile=ICC,
    )
    return jpeg[:2] + iptc_segment() + jpeg[2:]


def png_with_everything(image: Image.Image | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", (CANARY + b"-tEXt").decode())
    info.add_text("Description", (CANARY + b"-zTXt").decode(), zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=False)
    info.add_itxt("Title", (CANARY + b"-iTXt-compressed").decode(), zip=True)
    info.add(b"prIv", CANARY + b"-private-chunk")
    return encode(image or photo(), "PNG", pnginfo=info, exif=exif_with_gps_and_thumbnail(), icc_profile=ICC)


def webp_with_everything(*, lossless: bool) -> bytes:
    return encode(
        photo(),
        "WEBP",
        lossless=lossless,
        quality=95,
        exif=exif_with_gps_and_thumbnail(),
        xmp=XMP,
        icc_profile=ICC,
    )


def with_orientation_6(image: Image.Image, image_format: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90° clockwise to display"
    return encode(image, image_format, exif=exif, **({"lossless": True} if image_format == "WEBP" else {}))


# --- reading what came out -----------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG up to its scan, checking that nothing follows the end of the image."""
    assert data[:2] == b"\xff\xd8" and data.endswith(b"\xff\xd9")
    markers, offset = [], 2
    while data[offset + 1] != 0xDA:  # start of scan
        markers.append(data[offset + 1])
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    return markers


def png_chunk_types(data: bytes) -> list[bytes]:
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def riff_chunk_types(data: bytes) -> list[bytes]:
    types, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        types.append(data[offset : offset + 4])
        offset += 8 + size + (size & 1)
    return types


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    means = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean
    return sum(means) / len(means)


def assert_no_metadata(out: bytes) -> Image.Image:
    assert CANARY not in out
    cleaned = Image.open(io.BytesIO(out))
    exif = cleaned.getexif()
    assert len(exif) == 0
    assert len(exif.get_ifd(ExifTags.IFD.GPSInfo)) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"):
        assert key not in cleaned.info, key
    return cleaned


# --- JPEG ----------------------------------------------------------------------------------------------


def test_the_jpeg_fixture_really_carries_metadata() -> None:
    source = jpeg_with_everything()
    opened = Image.open(io.BytesIO(source))
    assert opened.getexif()[ExifTags.Base.Make] == MAKE.decode()
    gps = opened.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[ExifTags.GPS.GPSLatitudeRef] == "N" and gps[ExifTags.GPS.GPSLatitude] == (59, 19, 45.12)
    for canary in (MAKE, MODEL, THUMBNAIL_COMMENT, XMP, COMMENT, IPTC, ICC):
        assert canary in source
    assert {0xE1, 0xE2, 0xED, 0xFE} <= set(jpeg_segments(source))


def test_jpeg_loses_exif_gps_thumbnail_xmp_iptc_icc_and_comment() -> None:
    source = jpeg_with_everything()
    out = strip_metadata(source, media_type="image/jpeg")
    cleaned = assert_no_metadata(out)
    # What is left is a JFIF header, tables and frame: no APPn but APP0, no COM (0xFE).
    assert set(jpeg_segments(out)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xDD}
    assert cleaned.format == "JPEG" and cleaned.size == (64, 48)
    assert mean_difference(cleaned, Image.open(io.BytesIO(source))) < 2.0


def test_jpeg_drops_trailing_data_such_as_a_motion_photo_video() -> None:
    source = encode(photo(), "JPEG") + b"\0\0\0\x18ftypmp42" + CANARY + b"-motion-photo"
    out = strip_metadata(source, media_type="image/jpeg")
    assert_no_metadata(out)
    jpeg_segments(out)  # ends with EOI


def test_jpeg_keeps_only_the_primary_image_of_an_mpo() -> None:
    secondary = photo((32, 24)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    secondary.encoderinfo = {"comment": CANARY + b"-depth-map"}
    source = encode(photo(), "MPO", save_all=True, append_images=[secondary])
    assert getattr(Image.open(io.BytesIO(source)), "n_frames", 1) == 2
    assert CANARY in source

    out = strip_metadata(source, media_type="image/jpeg")
    cleaned = assert_no_metadata(out)
    assert getattr(cleaned, "n_frames", 1) == 1
    assert 0xE2 not in jpeg_segments(out)  # no MPF index
    assert cleaned.size == (64, 48)
    assert mean_difference(cleaned, photo()) < 2.0


@pytest.mark.parametrize(("subsampling", "expected"), [(0, 0), (1, 1), (2, 2)])
def test_jpeg_keeps_the_source_chroma_subsampling(subsampling: int, expected: int) -> None:
    source = encode(photo(), "JPEG", quality=95, subsampling=subsampling)
    out = strip_metadata(source, media_type="image/jpeg")
    cleaned = Image.open(io.BytesIO(out))
    assert isinstance(cleaned, JpegImagePlugin.JpegImageFile)
    assert JpegImagePlugin.get_sampling(cleaned) == expected


def test_jpeg_comes_out_baseline_even_from_a_progressive_source() -> None:
    source = encode(photo(), "JPEG", progressive=True)
    assert 0xC2 in jpeg_segments(source)
    out = strip_metadata(source, media_type="image/jpeg")
    assert 0xC0 in jpeg_segments(out) and 0xC2 not in jpeg_segments(out)


def test_grayscale_jpeg_stays_grayscale() -> None:
    source = encode(photo().convert("L"), "JPEG", exif=exif_with_gps_and_thumbnail())
    out = strip_metadata(source, media_type="image/jpeg")
    assert assert_no_metadata(out).mode == "L"


# --- PNG -----------------------------------------------------------------------------------------------


def test_png_loses_text_itxt_ztxt_exif_icc_and_private_chunks_with_pixels_exact() -> None:
    source = png_with_everything()
    chunks = png_chunk_types(source)
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"prIv"} <= set(chunks)
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    out = strip_metadata(source, media_type="image/png")
    cleaned = assert_no_metadata(out)
    # zTXt and iCCP are compressed, so a canary search alone would not see them: check the chunks.
    assert set(png_chunk_types(out)) <= {b"IHDR", b"IDAT", b"IEND"}
    assert getattr(cleaned, "text", None) == {}
    assert cleaned.mode == "RGB" and cleaned.tobytes() == photo().tobytes()


def test_palette_png_keeps_its_palette_and_transparency() -> None:
    image = photo().quantize(16)
    image.info["transparency"] = 3
    source = png_with_everything(image)
    out = strip_metadata(source, media_type="image/png")
    cleaned = assert_no_metadata(out)
    assert set(png_chunk_types(out)) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
    assert cleaned.mode == "P" and cleaned.info["transparency"] == 3
    assert cleaned.convert("RGBA").tobytes() == Image.open(io.BytesIO(source)).convert("RGBA").tobytes()


def test_rgba_png_keeps_its_alpha_exactly() -> None:
    image = photo().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    out = strip_metadata(png_with_everything(image), media_type="image/png")
    assert_no_metadata(out)
    assert Image.open(io.BytesIO(out)).tobytes() == image.tobytes()


# --- WebP ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_loses_exif_xmp_and_icc(lossless: bool) -> None:
    source = webp_with_everything(lossless=lossless)
    assert {b"EXIF", b"XMP ", b"ICCP"} <= set(riff_chunk_types(source))
    assert CANARY in source

    out = strip_metadata(source, media_type="image/webp")
    cleaned = assert_no_metadata(out)
    assert not {b"EXIF", b"XMP ", b"ICCP"} & set(riff_chunk_types(out))
    assert cleaned.size == (64, 48)


def test_lossless_webp_stays_lossless_with_pixels_exact() -> None:
    out = strip_metadata(webp_with_everything(lossless=True), media_type="image/webp")
    assert b"VP8L" in riff_chunk_types(out)
    assert Image.open(io.BytesIO(out)).convert("RGB").tobytes() == photo().tobytes()


def test_lossy_webp_stays_lossy_with_pixels_close() -> None:
    source = webp_with_everything(lossless=False)
    out = strip_metadata(source, media_type="image/webp")
    assert b"VP8 " in riff_chunk_types(out) and b"VP8L" not in riff_chunk_types(out)
    assert mean_difference(Image.open(io.BytesIO(out)), Image.open(io.BytesIO(source))) < 3.0


# --- orientation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_orientation_is_applied_to_the_pixels(image_format: str) -> None:
    # 60 wide, 40 high: red on top, blue below. Shown upright (90° clockwise) it is 40 wide, 60 high,
    # with the red on the right.
    image = Image.new("RGB", (60, 40), "blue")
    image.paste((255, 0, 0), (0, 0, 60, 20))
    source = with_orientation_6(image, image_format)

    out = strip_metadata(source, media_type=sniff_image_type(source) or "")
    cleaned = assert_no_metadata(out).convert("RGB")
    assert cleaned.size == (40, 60)
    red, _, blue = cleaned.getpixel((35, 30))  # type: ignore[misc]
    assert red > 200 and blue < 60
    red, _, blue = cleaned.getpixel((5, 30))  # type: ignore[misc]
    assert red < 60 and blue > 200


# --- what is refused -----------------------------------------------------------------------------------


def test_animated_png_is_refused() -> None:
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    source = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert b"acTL" in source
    with pytest.raises(AnimatedImageError):
        strip_metadata(source, media_type="image/png")


def test_animated_webp_is_refused() -> None:
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    source = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    assert b"ANIM" in source
    with pytest.raises(AnimatedImageError):
        strip_metadata(source, media_type="image/webp")


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header claims `width` by `height` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    source = bytearray(encode(photo((16, 16)), "JPEG"))
    sof = source.index(b"\xff\xc0")
    source[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(source)


def webp_claiming(width: int, height: int) -> bytes:
    source = bytearray(encode(photo((16, 16)), "WEBP", lossless=True))
    assert source[12:16] == b"VP8L" and source[20] == 0x2F
    source[21:25] = ((width - 1) | (height - 1) << 14).to_bytes(4, "little")
    return bytes(source)


@pytest.fixture
def decoded() -> Iterator[list[object]]:
    """The images Pillow decoded (ImageFile.load) during the test."""
    calls: list[object] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        calls.append(self)
        return original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", spy)
        yield calls


@pytest.mark.parametrize(
    ("source", "media_type"),
    [
        # Past twice Pillow's own limit: Pillow refuses inside Image.open.
        (png_claiming(100_000, 100_000), "image/png"),
        (jpeg_claiming(65_000, 65_000), "image/jpeg"),
        # Past our 50 megapixels but under Pillow's limit: only our check stands between it and load().
        (png_claiming(7_200, 7_200), "image/png"),
        (jpeg_claiming(8_000, 8_000), "image/jpeg"),
        (webp_claiming(8_000, 8_000), "image/webp"),
    ],
    ids=["png-10G", "jpeg-4G", "png-52M", "jpeg-64M", "webp-64M"],
)
def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(
    source: bytes, media_type: str, decoded: list[object]
) -> None:
    assert len(source) < 1000
    with pytest.raises(ImageTooLargeError):
        strip_metadata(source, media_type=media_type)
    assert decoded == []


def test_more_bytes_than_the_caller_may_buffer_are_refused() -> None:
    source = b"\xff\xd8\xff" + bytes(MAX_CLEANABLE_IMAGE_BYTES)
    with pytest.raises(ImageTooLargeError):
        strip_metadata(source, media_type="image/jpeg")


def broken_png_crc() -> bytes:
    source = bytearray(encode(photo(), "PNG"))
    source[29] ^= 0xFF  # the IHDR CRC
    return bytes(source)


def first_half(image_format: str) -> bytes:
    """The first half of a noisy picture, which compresses badly enough to have a middle to cut at."""
    noise = Image.frombytes("RGB", (128, 128), random.Random(7).randbytes(128 * 128 * 3))
    source = encode(noise, image_format)
    assert len(source) > 10_000
    return source[: len(source) // 2]


@pytest.mark.parametrize(
    ("source", "media_type"),
    [
        (b"\xff\xd8\xff" + CANARY * 20, "image/jpeg"),
        (first_half("JPEG"), "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + CANARY * 20, "image/png"),
        (broken_png_crc(), "image/png"),
        (first_half("PNG"), "image/png"),
        (b"RIFF\x40\0\0\0WEBP" + CANARY * 20, "image/webp"),
        (first_half("WEBP"), "image/webp"),
    ],
    ids=[
        "jpeg-junk",
        "jpeg-truncated",
        "png-junk",
        "png-bad-crc",
        "png-truncated",
        "webp-junk",
        "webp-truncated",
    ],
)
def test_corrupt_or_truncated_images_raise_a_bare_cleaning_error(source: bytes, media_type: str) -> None:
    with pytest.raises(ImageCleaningError) as raised:
        strip_metadata(source, media_type=media_type)
    # Nothing of the file, nor Pillow's message about it, rides along to a log.
    assert str(raised.value) == ImageCleaningError.message
    assert raised.value.__cause__ is None and raised.value.__context__ is None


@pytest.mark.parametrize(
    ("source", "media_type"),
    [
        (encode(photo(), "PNG"), "image/jpeg"),  # the client's word against the bytes
        (encode(photo(), "JPEG"), "image/webp"),
        (encode(photo(), "GIF"), "image/gif"),
        (encode(photo(), "PNG"), "application/octet-stream"),
    ],
)
def test_a_media_type_other_than_the_sniffed_one_is_refused(source: bytes, media_type: str) -> None:
    with pytest.raises(ImageCleaningError):
        strip_metadata(source, media_type=media_type)


def test_cleaning_never_touches_the_file_system(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {
        "image/jpeg": jpeg_with_everything(),
        "image/png": png_with_everything(),
        "image/webp": webp_with_everything(lossless=False),
    }
    for media_type, source in sources.items():  # load Pillow's plugins before the doors close
        strip_metadata(source, media_type=media_type)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file system was used")

    for module, name in [
        (builtins, "open"),
        (io, "open"),
        (os, "open"),
        (tempfile, "mkstemp"),
        (tempfile, "NamedTemporaryFile"),
        (tempfile, "TemporaryFile"),
        (tempfile, "SpooledTemporaryFile"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    for media_type, source in sources.items():
        assert CANARY not in strip_metadata(source, media_type=media_type)


# --- sniffing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "expected"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", None), ("BMP", None)],
)
def test_sniff_image_type_by_magic_bytes(image_format: str, expected: str | None) -> None:
    assert sniff_image_type(encode(photo(), image_format)[:12]) == expected


@pytest.mark.parametrize(
    "head",
    [b"", b"\xff\xd8", b"\x89PNG\r\n", b"RIFF\0\0\0\0WAVE", b"RIFF\0\0\0\0WEB", b"<svg xmlns=", b"GIF89a"],
)
def test_sniff_image_type_refuses_junk(head: bytes) -> None:
    assert sniff_image_type(head) is None
