"""In-graph BMP decoding for the variants tf.io.decode_bmp gets wrong, and a named refusal for the rest.

tf.io.decode_bmp (tensorflow/core/kernels/image/decode_image_op.cc, DecodeBmp) knows only the bytes per pixel:
an 8-bit palette BMP comes out as its palette *indices* read as gray, 1- and 4-bit ones fail with "Number of
channels inherent in the image must be 1, 3 or 4, was 0", 16-bit ones fail too, and the compression field is
never read. Layout of the headers (BITMAPFILEHEADER, BITMAPINFOHEADER and its V4/V5 extensions, BI_RGB,
BI_BITFIELDS): https://learn.microsoft.com/en-us/windows/win32/gdi/bitmap-storage

Here:
- 24- and 32-bit uncompressed (and 32-bit BI_BITFIELDS with the standard masks): tf.io.decode_bmp, which is right
  for those;
- 1-, 4- and 8-bit palette images: the rows unpacked into indices and looked up in the palette, in the graph;
- 16-bit: BI_RGB (5-5-5) and BI_BITFIELDS with 5-6-5 or 5-5-5 masks, scaled to 8 bits as Pillow does
  (v * 255 // max);
- anything else (RLE compression, JPEG/PNG inside a BMP, the 12-byte OS/2 header, other masks or depths):
  INVALID_ARGUMENT naming the variant.
Memory stays a small multiple of width x height (the caller checked those against the pixel limit first).
"""
from __future__ import annotations

import tensorflow as tf

# Compression field values (wingdi.h): BI_RGB 0, BI_RLE8 1, BI_RLE4 2, BI_BITFIELDS 3, BI_JPEG 4, BI_PNG 5.
BI_RGB, BI_BITFIELDS = 0, 3
_MASKS_565 = (0xF800, 0x07E0, 0x001F)
_MASKS_555 = (0x7C00, 0x03E0, 0x001F)
_MASKS_8888 = (0xFF0000, 0x00FF00, 0x0000FF)


def _substr(data: tf.Tensor, offset, length) -> tf.Tensor:
    """tf.strings.substr that gives b"" past the end instead of failing: its error message would quote the
    request's raw bytes (not UTF-8, and the client's own data echoed back). Found by make fuzz."""
    size = tf.cast(tf.strings.length(data), tf.int64)
    offset = tf.minimum(tf.cast(offset, tf.int64), size)
    return tf.strings.substr(data, offset, tf.maximum(tf.cast(length, tf.int64), 0))


def _u(data: tf.Tensor, offset, length: int) -> tf.Tensor:
    """Little-endian unsigned integer of `length` bytes at `offset`; 0 past the end."""
    raw = tf.io.decode_raw(_substr(data, offset, length), tf.uint8)
    raw = tf.cast(tf.pad(raw, [[0, length - tf.size(raw)]]), tf.int64)
    return tf.reduce_sum(raw * tf.constant([256 ** i for i in range(length)], tf.int64))


def header(data: tf.Tensor) -> dict:
    """The fields the decoder needs, as int64 scalars."""
    height = _u(data, 22, 4)
    height = tf.where(height >= 2 ** 31, height - 2 ** 32, height)
    return {
        "offset": _u(data, 10, 4),
        "header_size": _u(data, 14, 4),
        "width": _u(data, 18, 4),
        "height": tf.abs(height),
        "top_down": height < 0,
        "bpp": _u(data, 28, 2),
        "compression": _u(data, 30, 4),
        "colors_used": _u(data, 46, 4),
        "masks": tf.stack([_u(data, 54, 4), _u(data, 58, 4), _u(data, 62, 4)]),
    }


def _masks_are(masks: tf.Tensor, expected: tuple[int, int, int]) -> tf.Tensor:
    return tf.reduce_all(tf.equal(masks, tf.constant(expected, tf.int64)))


def kind(h: dict) -> tf.Tensor:
    """0: tf.io.decode_bmp; 1: palette; 2: 16-bit 5-5-5; 3: 16-bit 5-6-5; -1: refused."""
    bpp, comp, masks = h["bpp"], h["compression"], h["masks"]
    rgb = tf.equal(comp, BI_RGB)
    fields = tf.equal(comp, BI_BITFIELDS)
    return tf.case(
        [
            # BITMAPINFOHEADER (40), its V2/V3 extensions (52, 56), V4 (108), V5 (124); anything else, the
            # 12-byte OS/2 header included, is a variant we do not read.
            (tf.logical_not(tf.reduce_any(tf.equal(h["header_size"], [40, 52, 56, 108, 124]))),
             lambda: tf.constant(-1)),
            (tf.logical_and(tf.equal(bpp, 24), rgb), lambda: tf.constant(0)),
            (tf.logical_and(tf.equal(bpp, 32), tf.logical_or(rgb, tf.logical_and(fields, _masks_are(masks, _MASKS_8888)))),
             lambda: tf.constant(0)),
            (tf.logical_and(tf.reduce_any(tf.equal(bpp, [1, 4, 8])), rgb), lambda: tf.constant(1)),
            (tf.logical_and(tf.equal(bpp, 16), tf.logical_or(rgb, tf.logical_and(fields, _masks_are(masks, _MASKS_555)))),
             lambda: tf.constant(2)),
            (tf.logical_and(tf.equal(bpp, 16), tf.logical_and(fields, _masks_are(masks, _MASKS_565))),
             lambda: tf.constant(3)),
        ],
        default=lambda: tf.constant(-1),
    )


def _rows(data: tf.Tensor, h: dict) -> tf.Tensor:
    """uint8 [height, stride]: the stored rows (each padded to 4 bytes), top row first."""
    stride = (h["bpp"] * h["width"] + 31) // 32 * 4
    total = stride * h["height"]
    ok = tf.debugging.Assert(h["offset"] + total <= tf.cast(tf.strings.length(data), tf.int64),
                             ["BMP pixel data is cut short: needs", total, "bytes at offset", h["offset"]])
    with tf.control_dependencies([ok]):
        raw = tf.io.decode_raw(_substr(data, h["offset"], total), tf.uint8)
    rows = tf.reshape(raw, tf.stack([h["height"], stride]))
    # Bottom-up is the default: the first stored row is the bottom one.
    return tf.cond(h["top_down"], lambda: rows, lambda: tf.reverse(rows, [0]))


def _palette(data: tf.Tensor, h: dict) -> tf.Tensor:
    """uint8 [256, 3] RGB: the colour table (BGRx entries after the info header), black past its end."""
    count = tf.where(h["colors_used"] > 0, tf.minimum(h["colors_used"], 256),
                     tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.minimum(h["bpp"], 8)))
    raw = tf.io.decode_raw(_substr(data, 14 + h["header_size"], 4 * count), tf.uint8)
    raw = tf.pad(raw, [[0, 1024 - tf.size(raw)]])
    return tf.reshape(raw, [256, 4])[:, 2::-1]


def _palette_image(data: tf.Tensor, h: dict) -> tf.Tensor:
    rows = tf.cast(_rows(data, h), tf.int32)
    bpp = tf.cast(h["bpp"], tf.int32)
    per_byte = 8 // bpp
    # Pixels are packed most significant bits first: shift each byte right by 8 - bpp, 8 - 2 bpp, ... 0.
    shifts = 8 - bpp * tf.range(1, per_byte + 1)
    mask = tf.bitwise.left_shift(1, bpp) - 1
    indices = tf.bitwise.bitwise_and(tf.bitwise.right_shift(rows[:, :, None], shifts[None, None, :]), mask)
    indices = tf.reshape(indices, tf.stack([tf.shape(rows)[0], -1]))[:, : tf.cast(h["width"], tf.int32)]
    return tf.gather(_palette(data, h), indices)


def _sixteen_bit(data: tf.Tensor, h: dict, masks: tuple[int, int, int]) -> tf.Tensor:
    rows = tf.cast(_rows(data, h), tf.int32)
    pairs = tf.reshape(rows, tf.stack([tf.shape(rows)[0], -1, 2]))
    v = (pairs[..., 0] + 256 * pairs[..., 1])[:, : tf.cast(h["width"], tf.int32)]
    channels = []
    for m in masks:
        shift = (m & -m).bit_length() - 1
        top = m >> shift
        channels.append(tf.bitwise.bitwise_and(tf.bitwise.right_shift(v, shift), top) * 255 // top)
    return tf.cast(tf.stack(channels, -1), tf.uint8)


_COMPRESSION_NAMES = {1: "RLE8", 2: "RLE4", 3: "BI_BITFIELDS", 4: "JPEG", 5: "PNG", 6: "BI_ALPHABITFIELDS"}


def decode(data: tf.Tensor) -> tf.Tensor:
    """BMP bytes -> uint8 [height, width, 3] RGB, or InvalidArgumentError naming the unsupported variant."""
    h = header(data)
    k = kind(h)
    names = tf.constant([_COMPRESSION_NAMES.get(i, f"compression {i}") for i in range(8)])
    compression = tf.where(h["compression"] == BI_RGB, tf.constant("uncompressed"),
                           tf.gather(names, tf.clip_by_value(h["compression"], 0, 7)))
    ok = tf.debugging.Assert(
        k >= 0,
        ["unsupported BMP variant:", h["bpp"], "bits per pixel,", compression, "header of", h["header_size"],
         "bytes (supported: 1/4/8-bit palette, 16-bit 5-5-5 or 5-6-5, 24- and 32-bit)"],
    )
    with tf.control_dependencies([ok]):
        k = tf.identity(k)
    image = tf.switch_case(tf.maximum(k, 0), [
        lambda: tf.io.decode_bmp(data, channels=3),
        lambda: _palette_image(data, h),
        lambda: _sixteen_bit(data, h, _MASKS_555),
        lambda: _sixteen_bit(data, h, _MASKS_565),
    ])
    image.set_shape([None, None, 3])
    return image
