"""The hostile and odd image corpus (issue 13): every case generated here from code, none stored as a blob.

Each case is one request of one image (or, for the request bounds, `count` copies of it) with its expected outcome:
- "prediction": the answer must equal (within `tolerance`) the answer to `reference`, a lossless PNG of the
  pixels the image really holds (upright, first frame, palette looked up, 16 bits cut to 8 as libpng does);
- "error": INVALID_ARGUMENT whose message contains `message`.
and a bound on the process's peak memory growth while the request runs.

Used by tests/hostile/test_corpus.py against the shared tiny export (make test) and by
tools/validate/badinput.py against the real export (make validate). `python -m tools.validate.corpus DIR`
writes the files (name.ext + expected.json) for a look with other tools.
"""
from __future__ import annotations

import functools
import io
import struct
import sys
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# Bounds of peak resident memory growth per request (MiB). Small images: the model run dominates.
SMALL_MB = 256
# A refused header or a cut-down GIF must not allocate anything like what it declares.
REFUSED_MB = 64
# The animated GIF: one 2000x2000 screen is 12 MB of RGB plus the resize; all 30 frames would be 360 MB.
ANIMATED_MB = 150
ANIMATED_FRAMES, ANIMATED_SIDE = 30, 2000

UNSUPPORTED = "image is empty, corrupt or not JPEG, PNG, GIF or BMP"


@dataclass(frozen=True)
class CorpusCase:
    name: str
    description: str
    data: bytes
    expect: str  # "prediction" or "error"
    message: str | None = None
    reference: bytes | None = None  # a PNG whose answer the prediction must equal
    tolerance: float = 1e-5
    rss_bound_mb: float = SMALL_MB
    count: int = 1  # the request holds `count` copies of data (the reference request as many of reference)

    @property
    def images(self) -> list[bytes]:
        return [self.data] * self.count

    @property
    def references(self) -> list[bytes] | None:
        return None if self.reference is None else [self.reference] * self.count

    @property
    def extension(self) -> str:
        for magic, ext in ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"BM", "bmp")):
            if self.data.startswith(magic):
                return ext
        return "bin"


# ------------------------------------------------------------------------------------------ pixels and encoders

def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth photo-like RGB with an asymmetric gradient, so a flip or a turn changes the answer."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    channels = [127 + 90 * np.sin(x / (5 + 3 * c) + y / (13 + 2 * c) + phase[c]) + 30 * (y / height - x / width)
                for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def save(image: Image.Image | np.ndarray, fmt: str, **kw) -> bytes:
    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_of(pixels: np.ndarray) -> bytes:
    return save(np.ascontiguousarray(pixels), "PNG")


def rgb_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# (first row, first column, row step, column step) of the seven passes (PNG spec, section 8.2).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def raw_png(samples: np.ndarray, color_type: int, bit_depth: int, interlace: bool = False) -> bytes:
    """A PNG written by hand (filter 0 on every row): 16-bit and Adam7-interlaced files Pillow cannot write."""
    h, w = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    arr = samples.astype(dtype).reshape(h, w, -1)

    def rows(a):
        return b"".join(b"\x00" + a[r].tobytes() for r in range(a.shape[0]))

    if interlace:
        body = b"".join(rows(arr[y0::dy, x0::dx]) for y0, x0, dy, dx in
                        ((y, x, dy, dx) for (y, x, dy, dx) in _ADAM7) if arr[y0::dy, x0::dx].size)
    else:
        body = rows(arr)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(body)) + _chunk(b"IEND", b"")


def raw_bmp(pixels_bgr_rows: bytes, width: int, height: int, bpp: int, *, compression: int = 0,
            palette: bytes = b"", masks: bytes = b"", top_down: bool = False, header_size: int = 40) -> bytes:
    """A BMP written by hand: BITMAPFILEHEADER + BITMAPINFOHEADER (+ masks, palette) + the given row bytes."""
    info = struct.pack("<IiiHHIIiiII", header_size, width, -height if top_down else height, 1, bpp, compression,
                       len(pixels_bgr_rows), 2835, 2835, len(palette) // 4, 0)
    info += b"\x00" * (header_size - 40)
    offset = 14 + len(info) + len(masks) + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels_bgr_rows), 0, 0, offset)
    return head + info + masks + palette + pixels_bgr_rows


def _stride(width: int, bpp: int) -> int:
    return (bpp * width + 31) // 32 * 4


def packed_rows(indices: np.ndarray, bpp: int, bottom_up: bool = True) -> bytes:
    """Palette indices [h, w] packed bpp bits per pixel, most significant first, rows padded to 4 bytes."""
    h, w = indices.shape
    out = []
    for row in (indices[::-1] if bottom_up else indices):
        bits = "".join(format(int(v), f"0{bpp}b") for v in row)
        bits += "0" * (-len(bits) % 8)
        data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
        out.append(data + b"\x00" * (_stride(w, bpp) - len(data)))
    return b"".join(out)


def sixteen_bit_rows(pixels: np.ndarray, layout: str) -> tuple[bytes, np.ndarray]:
    """(row bytes, the RGB those 16-bit values decode to, scaled as Pillow's BGR;15/BGR;16 unpackers do)."""
    r, g, b = (pixels[..., i].astype(np.int32) for i in range(3))
    if layout == "555":
        rq, gq, bq, gmax = r >> 3, g >> 3, b >> 3, 31
        v = (rq << 10) | (gq << 5) | bq
    else:
        rq, gq, bq, gmax = r >> 3, g >> 2, b >> 3, 63
        v = (rq << 11) | (gq << 5) | bq
    decoded = np.stack([rq * 255 // 31, gq * 255 // gmax, bq * 255 // 31], -1).astype(np.uint8)
    h, w = v.shape
    pad = _stride(w, 16) - 2 * w
    rows = b"".join(v[y].astype("<u2").tobytes() + b"\x00" * pad for y in range(h - 1, -1, -1))
    return rows, decoded


def with_exif(jpeg: bytes, orientation: int | None, tiff: bytes | None = None) -> bytes:
    """The JPEG with an APP1 Exif segment right after SOI holding IFD0 Orientation (or the given TIFF bytes)."""
    if tiff is None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        payload = exif.tobytes()  # "Exif\0\0" + TIFF
    else:
        payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def big_endian_exif(orientation: int) -> bytes:
    """A Motorola-order ("MM") TIFF with one IFD0 entry, as some cameras write."""
    return b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1,
                                                                                         orientation, 0) + b"\0" * 4


def gif_blocks(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(everything before the first image's data sub-blocks, those sub-blocks' payloads, everything after)."""
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while data[pos] == 0x21:
        pos += 2
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    assert data[pos] == 0x2C
    packed = data[pos + 9]
    pos += 10 + (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0) + 1
    head, payloads = data[:pos], []
    while data[pos]:
        payloads.append(data[pos + 1:pos + 1 + data[pos]])
        pos += 1 + data[pos]
    return head, payloads, data[pos + 1:]


def rechunk_gif(data: bytes, size: int) -> bytes:
    """The same GIF with its first image's LZW data in sub-blocks of `size` bytes (legal, if unusual)."""
    if not 1 <= size <= 255:
        raise ValueError(f"a GIF sub-block holds 1 to 255 bytes, not {size}")
    head, payloads, tail = gif_blocks(data)
    lzw = b"".join(payloads)
    # Whole sub-blocks as rows of one array: a generator over 1-byte blocks of the 900x900 GIF took ~1.5 s.
    whole = len(lzw) // size
    rows = np.frombuffer(lzw, np.uint8, count=whole * size).reshape(whole, size)
    blocks = np.hstack([np.full((whole, 1), size, np.uint8), rows]).tobytes()
    rest = lzw[whole * size:]
    if rest:
        blocks += bytes([len(rest)]) + rest
    return head + blocks + b"\x00" + tail


def local_colour_table(data: bytes) -> bytes:
    """The same one-frame GIF with its global colour table moved into the image descriptor."""
    packed = data[10]
    assert packed & 0x80
    table_len = 3 * 2 ** ((packed & 7) + 1)
    table = data[13:13 + table_len]
    rest = data[13 + table_len:]
    at = rest.find(b"\x2c")
    descriptor = bytearray(rest[at:at + 10])
    descriptor[9] = (descriptor[9] & 0x78) | 0x80 | (packed & 7)
    return data[:10] + bytes([packed & 0x7F]) + data[11:13] + rest[:at] + bytes(descriptor) + table + rest[at + 10:]


@functools.lru_cache(maxsize=1)
def animated_gif() -> tuple[bytes, bytes]:
    """(30 frames of 2000x2000, each a different flat colour, the PNG of the first frame)."""
    palette = [v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)]
    frames = []
    for i in range(ANIMATED_FRAMES):
        f = Image.new("P", (ANIMATED_SIDE, ANIMATED_SIDE), 10 + i)
        f.putpalette(palette)
        frames.append(f)
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)
    return data, png_of(np.asarray(frames[0].convert("RGB")))


# ------------------------------------------------------------------------------------------ the cases

# Memoised (like request_cases): the corpus depends only on its arguments, takes seconds to generate, and every
# validation of a process asks for it once per layout. Frozen cases of bytes: no caller can change them.
@functools.lru_cache(maxsize=4)
def cases(input_size: tuple[int, int] = (40, 48)) -> tuple[CorpusCase, ...]:
    """Every case; `input_size` (height, width) is the model's, which bounds the JPEGs' size (see below)."""
    import tensorflow as tf  # the JPEG references are TensorFlow's own decode of the same scan

    px = photo(96, 128, seed=31)
    # The JPEGs are kept under twice the model's input size, so the servable decodes them at full scale (no
    # reduced DCT scale: export/preprocess.py) and TensorFlow's full-size decode is the exact reference.
    jh, jw = min(72, 2 * input_size[0] - 1), min(88, 2 * input_size[1] - 1)
    jpeg = save(photo(jh, jw, seed=32), "JPEG", quality=92)
    jpeg_pixels = tf.io.decode_jpeg(jpeg, channels=3).numpy()
    png = png_of(px)
    out: list[CorpusCase] = []

    def ok(name, description, data, reference, **kw):
        out.append(CorpusCase(name, description, data, "prediction", reference=reference, **kw))

    def bad(name, description, data, message, **kw):
        out.append(CorpusCase(name, description, data, "error", message=message, rss_bound_mb=REFUSED_MB, **kw))

    # --- JPEG: EXIF orientation 1-8 must give the upright picture (Pillow's exif_transpose of the same pixels)
    for o in range(1, 9):
        upright = np.asarray(ImageOps.exif_transpose(_with_orientation(Image.fromarray(jpeg_pixels), o)))
        # Turning the resized image instead of the full one differs by float rounding only (~1e-4 of 255).
        ok(f"jpeg_exif_orientation_{o}", f"JPEG with EXIF Orientation={o}", with_exif(jpeg, o), png_of(upright),
           tolerance=1e-4)
    turned = np.ascontiguousarray(np.rot90(jpeg_pixels, k=-1))
    ok("jpeg_exif_big_endian_6", "JPEG with a big-endian (MM) EXIF block, Orientation=6",
       with_exif(jpeg, None, big_endian_exif(6)), png_of(turned), tolerance=1e-4)
    ok("jpeg_exif_orientation_0", "JPEG with an out-of-range Orientation=0: served as stored",
       with_exif(jpeg, 0), png_of(jpeg_pixels))
    ok("jpeg_exif_garbage", "JPEG whose Exif segment holds a cut-off TIFF header: served as stored",
       with_exif(jpeg, None, b"II*\x00\xff\xff\xff\x7f"), png_of(jpeg_pixels))
    ok("jpeg_exif_ifd_past_end", "JPEG whose IFD0 offset points past the segment: served as stored",
       with_exif(jpeg, None, b"MM\x00\x2a\x7f\xff\xff\xf0"), png_of(jpeg_pixels))
    progressive = save(photo(jh, jw, seed=33), "JPEG", quality=92, progressive=True)
    ok("jpeg_progressive", "progressive JPEG", progressive, png_of(tf.io.decode_jpeg(progressive, channels=3).numpy()))
    gray = save(Image.fromarray(photo(jh, jw, seed=34)).convert("L"), "JPEG", quality=92)
    ok("jpeg_grayscale", "one-channel JPEG", gray, png_of(tf.io.decode_jpeg(gray, channels=3).numpy()))
    bad("jpeg_truncated", "first half of a JPEG", jpeg[: len(jpeg) // 2], "Invalid JPEG data")
    bad("jpeg_huge_header", "small JPEG declaring 65000x65000 (12.7 GB of RGB)", _jpeg_size(jpeg, 65000, 65000),
        "image declares")
    bad("jpeg_zero_width", "JPEG whose frame header declares width 0", _jpeg_size(jpeg, 96, 0), "Invalid JPEG data")

    # --- PNG variants
    ok("png_rgb16", "16-bit RGB PNG (served as its high bytes, as libpng strips 16 to 8)",
       raw_png(px.astype(np.uint16) * 257 + 3, 2, 16), png)
    ok("png_gray16", "16-bit grayscale PNG", raw_png(px[..., 0].astype(np.uint16) * 257, 0, 16),
       png_of(np.repeat(px[..., :1], 3, -1)))
    ok("png_interlaced", "Adam7-interlaced RGB PNG", raw_png(px, 2, 8, interlace=True), png)
    ok("png_interlaced_rgba16", "Adam7-interlaced 16-bit RGBA PNG",
       raw_png(np.concatenate([px, px[..., :1]], -1).astype(np.uint16) * 257, 6, 16, interlace=True), png)
    pal = Image.fromarray(px).quantize(64)
    pal_trns = save(pal, "PNG", transparency=0)
    ok("png_palette_transparency", "palette PNG with a tRNS chunk (alpha dropped)", pal_trns,
       png_of(rgb_of(save(pal, "PNG"))))
    la = Image.fromarray(px).convert("LA")
    ok("png_gray_alpha", "grayscale + alpha PNG", save(la, "PNG"), png_of(np.asarray(la.convert("RGB"))))
    bad("png_huge_header", "small PNG declaring 100000x100000", _png_size(png, 100000, 100000), "image declares")
    bad("png_truncated_idat", "PNG cut inside its image data", png[: len(png) // 2], "Invalid PNG data")

    # --- GIF: first frame only, bounded whatever the frame count
    anim, first = animated_gif()
    ok("gif_animated_30x2000x2000", f"{ANIMATED_FRAMES}-frame {ANIMATED_SIDE}x{ANIMATED_SIDE} GIF: only the first "
       "frame is decoded", anim, first, rss_bound_mb=ANIMATED_MB)
    small_gif = save(Image.fromarray(px).quantize(200), "GIF")
    gif_ref = png_of(rgb_of(small_gif))
    ok("gif_local_colour_table", "GIF without a global colour table whose frame has its own",
       local_colour_table(small_gif), gif_ref)
    ok("gif_one_byte_subblocks", "GIF whose LZW data comes in 1-byte sub-blocks", rechunk_gif(small_gif, 1), gif_ref)
    bad("gif_no_trailer_cut", "GIF cut inside its first frame", small_gif[: len(small_gif) // 2],
        "GIF has no complete first image")
    bad("gif_no_image", "GIF header, screen and trailer, no image", small_gif[:13] + b"\x3b",
        "GIF has no complete first image")
    bad("gif_huge_screen", "GIF declaring a 65535x65535 screen", small_gif[:6] + b"\xff\xff\xff\xff" + small_gif[10:],
        "image declares")
    head, payloads, tail = gif_blocks(small_gif)
    frame_at = head.rfind(b"\x2c", 0, len(head) - 1)
    huge_frame = bytearray(small_gif)
    huge_frame[frame_at + 5:frame_at + 9] = b"\xff\xff\xff\xff"
    bad("gif_huge_frame", "GIF with a small screen and a 65535x65535 first frame", bytes(huge_frame), "image declares")
    big = save(Image.fromarray(photo(900, 900, 3)).quantize(256), "GIF")
    ok("gif_900k_one_byte_subblocks", f"900x900 GIF whose {len(big) // 1000} KB of LZW data come in 1-byte "
       "sub-blocks", rechunk_gif(big, 1), png_of(rgb_of(big)))
    comments = b"".join(b"\x21\xfe\x01x\x00" for _ in range(100))
    bad("gif_100_extensions", "GIF with 100 comment extensions before its first image",
        small_gif[:13 + 3 * 256] + comments + small_gif[13 + 3 * 256:], "extension blocks before its first image")

    # --- BMP variants
    indices = (np.arange(96 * 128).reshape(96, 128) * 7 + np.arange(128)[None]) % 256
    for bpp in (1, 4, 8):
        colours = 2 ** bpp
        rng = np.random.default_rng(bpp)
        table = rng.integers(0, 256, (colours, 3), dtype=np.uint8)
        idx = indices % colours
        palette = b"".join(bytes([b, g, r, 0]) for r, g, b in table)
        ok(f"bmp_palette_{bpp}bit", f"{bpp}-bit palette BMP", raw_bmp(packed_rows(idx, bpp), 128, 96, bpp,
                                                                      palette=palette), png_of(table[idx]))
    quantized = Image.fromarray(px).quantize(256)
    ok("bmp_palette_8bit_pillow", "8-bit palette BMP written by Pillow", save(quantized, "BMP"),
       png_of(rgb_of(save(quantized, "PNG"))))
    ok("bmp_gray_8bit_pillow", "8-bit grayscale BMP written by Pillow (a gray palette)",
       save(Image.fromarray(px).convert("L"), "BMP"), png_of(np.asarray(Image.fromarray(px).convert("L").convert("RGB"))))
    ok("bmp_1bit_pillow", "1-bit BMP written by Pillow", save(Image.fromarray(px).convert("1"), "BMP"),
       png_of(np.asarray(Image.fromarray(px).convert("1").convert("RGB"))))
    rows, decoded = sixteen_bit_rows(px, "555")
    ok("bmp_16bit_555", "16-bit BI_RGB (5-5-5) BMP", raw_bmp(rows, 128, 96, 16), png_of(decoded))
    rows, decoded = sixteen_bit_rows(px, "565")
    ok("bmp_16bit_565_bitfields", "16-bit BI_BITFIELDS (5-6-5) BMP",
       raw_bmp(rows, 128, 96, 16, compression=3, masks=struct.pack("<III", 0xF800, 0x07E0, 0x001F)), png_of(decoded))
    ok("bmp_24bit", "24-bit BMP", save(px, "BMP"), png)
    ok("bmp_32bit", "32-bit BMP (alpha dropped)", save(Image.fromarray(px).convert("RGBA"), "BMP"), png)
    top_down = b"".join(px[y, :, ::-1].tobytes() for y in range(96))  # 128*3 bytes: already 4-aligned
    ok("bmp_24bit_top_down", "24-bit top-down BMP (negative height)", raw_bmp(top_down, 128, 96, 24, top_down=True), png)
    bad("bmp_rle8", "8-bit RLE8-compressed BMP", raw_bmp(b"\x00\x01", 128, 96, 8, compression=1,
                                                           palette=b"\0" * 1024), "RLE8")
    bad("bmp_16bit_odd_masks", "16-bit BI_BITFIELDS BMP with masks other than 5-6-5 / 5-5-5",
        raw_bmp(rows, 128, 96, 16, compression=3, masks=struct.pack("<III", 0xF000, 0x0F00, 0x00F0)),
        "unsupported BMP variant")
    bad("bmp_os2_header", "BMP with the 12-byte OS/2 header", save(px, "BMP")[:14] + struct.pack("<IHHHH", 12, 128, 96, 1, 24)
        + b"\0" * 100, "unsupported BMP variant")
    # Found by make fuzz (seed 13): a header size pointing past the end made tf.strings.substr fail with an
    # error quoting the request's raw bytes.
    bad("bmp_header_size_past_end", "1-bit BMP whose info-header size field is 0x0003fffc",
        _bmp_header_size(save(Image.fromarray(px).convert("1"), "BMP"), 0x0003FFFC), "unsupported BMP variant")
    eight = raw_bmp(packed_rows(indices % 256, 8), 128, 96, 8, palette=b"\x10\x20\x30\x00" * 256)
    bad("bmp_pixels_cut_short", "8-bit BMP cut inside its pixel rows", eight[: len(eight) - 500],
        "BMP pixel data is cut short")
    bad("bmp_huge_header", "BMP declaring 100000x100000", save(px, "BMP")[:18] + struct.pack("<ii", 100000, 100000)
        + save(px, "BMP")[26:], "image declares")

    # --- not images at all
    bad("empty", "zero bytes", b"", UNSUPPORTED)
    bad("text", "a line of text", b"hello, this is not an image\n", UNSUPPORTED)
    bad("webp", "a WebP image (not a supported format)", save(px, "WEBP"), UNSUPPORTED)
    bad("magic_only_png", "the 8-byte PNG signature alone", b"\x89PNG\r\n\x1a\n", UNSUPPORTED)
    return tuple(out)


# A photo of 12 MP (4000x3000), the size the "64 x 12 MP" request is made of.
PHOTO_SIDES = (3000, 4000)


@functools.lru_cache(maxsize=2)
def _flat(fmt: str, height: int, width: int) -> bytes:
    """One flat colour: tiny when encoded, `height x width` pixels when decoded."""
    return save(Image.new("RGB", (width, height), (90, 140, 200)), fmt, **({"quality": 90} if fmt == "JPEG" else {}))


def jpeg_with_padding(size: int) -> bytes:
    """A small JPEG of exactly `size` bytes (at least 1 KB): COM segments after SOI make up the rest."""
    body = save(photo(24, 32, seed=41), "JPEG", quality=90)
    need = size - len(body)
    if need < 0 or 0 < need < 4:
        raise ValueError(f"cannot pad a {len(body)}-byte JPEG to {size} bytes")
    segments = []
    while need:
        # A COM segment: FF FE, a 2-byte length that counts itself, up to 65533 bytes of text.
        take = min(need, 65537)
        if 0 < need - take < 4:
            take = need - 4
        segments.append(b"\xff\xfe" + struct.pack(">H", take - 2) + b"c" * (take - 4))
        need -= take
    return body[:2] + b"".join(segments) + body[2:]


@functools.lru_cache(maxsize=4)
def request_cases(max_image_pixels: int, max_request_pixels: int, max_request_bytes: int,
                  input_size: tuple[int, int] = (40, 48), fast_downscale: bool = True) -> tuple[CorpusCase, ...]:
    """Whole requests against the export's request bounds (export_info's max_request_pixels/_bytes).

    Over the pixel bound: flat PNGs of 12 MP (no reduced-scale decode), one more than fit: refused before any is
    decoded. Within it: flat 12 MP JPEGs, as many as fit (decoded at a reduced scale by default), answered as a
    PNG of their flat colour at that scale (libjpeg rounds it differently per scale). Over the byte bound: two
    small JPEGs padded to one or two bytes over it in all.
    """
    import tensorflow as tf

    from export.preprocess import JPEG_RATIOS, jpeg_ratio

    h, w = PHOTO_SIDES
    while h * w > max_image_pixels:  # a photo the image limit lets through on its own
        h, w = h // 2, w // 2
    fit = max_request_pixels // (h * w)
    png, jpeg = _flat("PNG", h, w), _flat("JPEG", h, w)
    ratio = JPEG_RATIOS[int(jpeg_ratio(tf.constant([h, w]), input_size))] if fast_downscale else 1
    colour = np.full((64, 64, 3), tf.io.decode_jpeg(jpeg, channels=3, ratio=ratio).numpy()[0, 0], np.uint8)
    # Within the bound the images are decoded, up to 10 at once (tf.map_fn), at full size when fast_downscale is off.
    decoded_mb = -(-3 * min(fit, 10) * h * w // 2 ** 20)
    per_image = max_request_bytes // 2 + 1
    over_bytes = () if per_image < 4096 else (  # a bound this small leaves no room for the padded JPEGs
        # The request itself is held (and copied into tensors) before the graph runs: its bound counts its size.
        CorpusCase("request_over_byte_bound", f"2 padded JPEGs of {per_image} bytes, one or two bytes over "
                   "model.max_request_bytes in all", jpeg_with_padding(per_image), "error",
                   message="bytes per request (model.max_request_bytes)",
                   rss_bound_mb=REFUSED_MB + -(-4 * 2 * per_image // 2 ** 20), count=2),)
    return (
        CorpusCase("request_over_pixel_bound", f"{fit + 1} PNGs of {w}x{h} ({(fit + 1) * h * w} pixels in all), one "
                   "more than model.max_request_pixels lets through", png, "error",
                   message="pixels per request (model.max_request_pixels)", rss_bound_mb=REFUSED_MB, count=fit + 1),
        CorpusCase("request_within_pixel_bound", f"{fit} JPEGs of {w}x{h} ({fit * h * w} pixels in all), as many as "
                   "model.max_request_pixels lets through", jpeg, "prediction", reference=png_of(colour),
                   tolerance=1e-4, rss_bound_mb=SMALL_MB + decoded_mb, count=fit),
    ) + over_bytes


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    exif = image.getexif()
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    return image


def _jpeg_size(data: bytes, height: int, width: int) -> bytes:
    out = bytearray(data)
    i = out.find(b"\xff\xc0")
    out[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def _bmp_header_size(data: bytes, size: int) -> bytes:
    return data[:14] + struct.pack("<I", size) + data[18:]


def _png_size(data: bytes, height: int, width: int) -> bytes:
    return data[:16] + struct.pack(">II", width, height) + data[24:]


def write(directory, request_bounds: tuple[int, int, int] | None = None) -> None:
    """Write every case as <name>.<ext> plus expected.json into directory; with request_bounds (max_image_pixels,
    max_request_pixels, max_request_bytes) also the whole-request cases (one copy of the image; `count` says
    how many the request holds)."""
    import json
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    expected = {}
    for case in cases() + (request_cases(*request_bounds) if request_bounds else ()):
        (d / f"{case.name}.{case.extension}").write_bytes(case.data)
        expected[case.name] = {"expect": case.expect, "message": case.message, "description": case.description,
                               "rss_bound_mb": case.rss_bound_mb, "count": case.count}
    (d / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "build/corpus")
