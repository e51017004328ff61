"""Graph helpers that turn encoded image bytes into the model's input tensor.

Each works eagerly (unit-tested that way) and inside the serving tf.function. First, for the whole batch: its
encoded bytes and declared pixels against the request bounds (check_request_bounds). Then per image: read the
declared size from the header, refuse it above the pixel limit, decode (large JPEGs at a reduced DCT scale),
resize with antialiasing. Then, for the whole batch, the model's own normalization.
"""
from __future__ import annotations

import tensorflow as tf

from export import bmp, exif, gif

# Per-channel constants of Keras applications' preprocess_input modes.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("caffe", "tf", "torch", "none")

# libjpeg decodes at 1/1, 1/2, 1/4 and 1/8 scale for a fraction of the full cost.
JPEG_RATIOS = (1, 2, 4, 8)
# A reduced-scale decode is used only while it stays at least this many times the model input. libjpeg's
# reduced scales come from the low-frequency DCT coefficients, a proper low-pass filter, so the result is
# what an antialiased downscale of the full image would give.
DOWNSCALE_MARGIN = 1
# Shrink factor above which resizing needs the antialiased filter (see resize).
ANTIALIAS_ABOVE = 2.0

UNSUPPORTED_MESSAGE = "image is empty, corrupt or not JPEG, PNG, GIF or BMP"


# Header bytes read for PNG, GIF and BMP sizes (BMP's info header ends at byte 26).
_HEADER_BYTES = 26
# Bytes each format needs for the fields read from its header, by format code.
_NEEDED_BYTES = (4, 24, 10, 26)
# Sides are capped at 2^31 before multiplying: a PNG or BMP header can declare up to 2^32 - 1, and the product of
# two such sides wraps around int64 (it used to turn negative and pass a limit).
_SIDE_CAP = 2 ** 31


def _uint(raw: tf.Tensor, offset: int, length: int, big_endian: bool) -> tf.Tensor:
    """The unsigned integers stored in `length` bytes at `offset` of each row of raw header bytes (int64 [..., n])."""
    weights = [256 ** i for i in range(length)]
    return tf.reduce_sum(raw[..., offset:offset + length]
                         * tf.constant(weights[::-1] if big_endian else weights, tf.int64), axis=-1)


def image_format(data: tf.Tensor) -> tf.Tensor:
    """0 JPEG, 1 PNG, 2 GIF, 3 BMP, -1 anything else, from the magic bytes alone; elementwise, for one image or a
    batch (no control flow: one pass of string comparisons)."""
    head = tf.strings.substr(data, 0, 8)
    jpeg = tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff")
    png = tf.equal(head, b"\x89PNG\r\n\x1a\n")
    six = tf.strings.substr(head, 0, 6)
    gif = tf.logical_or(tf.equal(six, b"GIF87a"), tf.equal(six, b"GIF89a"))
    bmp_ = tf.equal(tf.strings.substr(head, 0, 2), b"BM")
    return tf.where(jpeg, 0, tf.where(png, 1, tf.where(gif, 2, tf.where(bmp_, 3, -1))))


def _first(values: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
    """values[i] for the first i where `where` holds (values[0]'s type, 0 when nowhere): what an error names."""
    padded = tf.concat([tf.boolean_mask(values, where), tf.zeros([1], values.dtype)], 0)
    return padded[0]


def declared_shapes(images: tf.Tensor, formats: tf.Tensor | None = None) -> tf.Tensor:
    """[n, 2] (int64 height, width) as the headers of a batch declare them, without decoding any pixel data.

    PNG, GIF and BMP sizes sit at fixed offsets and are read for the whole batch at once; JPEGs go through
    tf.image.extract_jpeg_shape one by one (only the JPEGs). Fails with InvalidArgumentError for bytes that are
    not a supported image or whose header is cut short.
    """
    formats = image_format(images) if formats is None else formats
    length = tf.strings.length(images)
    # The header fields read below must be present; substr past the end would silently return less.
    bad = tf.logical_or(formats < 0, length < tf.gather(tf.constant(_NEEDED_BYTES), tf.maximum(formats, 0)))
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)),
                                [UNSUPPORTED_MESSAGE, "bytes:", _first(length, bad)])
    with tf.control_dependencies([check]):
        formats = tf.identity(formats)

    # Every header padded to the same length, so one decode_raw reads the whole batch.
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(images, 0, _HEADER_BYTES),
                                              tf.constant(b"\0" * _HEADER_BYTES)]), 0, _HEADER_BYTES)
    raw = tf.cast(tf.reshape(tf.io.decode_raw(head, tf.uint8), [-1, _HEADER_BYTES]), tf.int64)

    def signed(offset):
        v = _uint(raw, offset, 4, False)
        return tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))  # top-down BMPs store a negative height

    # The 12-byte OS/2 BMP header stores 16-bit sizes; it is refused by name in export/bmp.py.
    os2 = tf.equal(_uint(raw, 14, 4, False), 12)
    by_format = tf.stack([
        tf.zeros_like(length, tf.int64), _uint(raw, 20, 4, True), _uint(raw, 8, 2, False),
        tf.where(os2, _uint(raw, 20, 2, False), signed(22)),
    ], axis=1)  # heights [n, 4]
    widths = tf.stack([
        tf.zeros_like(length, tf.int64), _uint(raw, 16, 4, True), _uint(raw, 6, 2, False),
        tf.where(os2, _uint(raw, 18, 2, False), signed(18)),
    ], axis=1)
    column = tf.maximum(formats, 0)[:, None]
    shapes = tf.concat([tf.gather(by_format, column, batch_dims=1), tf.gather(widths, column, batch_dims=1)], 1)

    jpegs = tf.where(tf.equal(formats, 0))
    jpeg_shapes = tf.map_fn(lambda d: tf.cast(tf.image.extract_jpeg_shape(d)[:2], tf.int64),
                            subset(images, tf.equal(formats, 0)), fn_output_signature=tf.TensorSpec([2], tf.int64))
    return tf.tensor_scatter_nd_update(shapes, jpegs, jpeg_shapes)


def subset(values: tf.Tensor, where: tf.Tensor) -> tf.Tensor:
    """values[where] along the first axis; the tensor itself when `where` holds everywhere (the usual all-JPEG
    request), because gathering strings copies them: 2 MB per phone photo, measurable against its decode."""
    return tf.cond(tf.reduce_all(where), lambda: tf.identity(values),
                   lambda: tf.gather_nd(values, tf.where(where)))


def declared_shape(data: tf.Tensor) -> tf.Tensor:
    """[height, width] (int64) of one image, as its header declares it (see declared_shapes)."""
    return declared_shapes(tf.reshape(data, [1]))[0]


def _pixels(shapes: tf.Tensor) -> tf.Tensor:
    sides = tf.minimum(shapes, _SIDE_CAP)
    return sides[..., 0] * sides[..., 1]


def check_pixel_limit(shape: tf.Tensor, max_pixels: int) -> tf.Operation:
    """Refuses any of one [2] or many [n, 2] declared shapes that is empty or above `max_pixels`, naming the first."""
    shapes = tf.reshape(shape, [-1, 2])
    over = tf.logical_not(tf.logical_and(tf.reduce_all(shapes > 0, axis=1), _pixels(shapes) <= max_pixels))
    return tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(over)),
        ["image declares", _first(shapes[:, 0], over), "x", _first(shapes[:, 1], over), "pixels; the limit is",
         tf.constant(max_pixels, tf.int64), "pixels"],
        summarize=8,
    )


def request_bytes(images: tf.Tensor) -> tf.Tensor:
    """Encoded bytes of a batch in all (int64)."""
    return tf.reduce_sum(tf.strings.length(images, unit="BYTE"))


def _checked_headers(images: tf.Tensor, max_image_pixels: int | None) -> tuple[tf.Tensor, tf.Tensor]:
    """formats [n] and declared shapes [n, 2] of a batch, once every image is a supported format and (with a
    limit) within its own pixel limit."""
    formats = image_format(images)
    shapes = declared_shapes(images, formats)
    if max_image_pixels is not None:
        with tf.control_dependencies([check_pixel_limit(shapes, max_image_pixels)]):
            shapes = tf.identity(shapes)
    return formats, shapes


def _total_pixels(shapes: tf.Tensor) -> tf.Tensor:
    # float64 is exact below 2^53 (far above any bound); the sum is clamped to 2^62.
    total = tf.reduce_sum(tf.cast(_pixels(shapes), tf.float64))
    return tf.cast(tf.minimum(total, 2.0 ** 62), tf.int64)


def request_pixels(images: tf.Tensor, max_image_pixels: int | None = None) -> tf.Tensor:
    """Declared pixels of a batch in all (int64), from the headers alone; fails like declared_shapes for an image
    that is not a supported format, and like check_pixel_limit for one over `max_image_pixels` (so an image too
    big on its own is named as such, not as a request too big).

    A GIF counts its screen once: only its first frame is ever decoded (export/gif.py). Sides are capped at 2^31
    before multiplying, so a product stays below 2^62 and cannot wrap around.
    """
    return _total_pixels(_checked_headers(images, max_image_pixels)[1])


def _within(images: tf.Tensor, total: tf.Tensor, limit: int, unit: str, key: str) -> tf.Operation:
    # One formatted string, so TF Serving's message reads as one sentence with the numbers in it.
    count = tf.size(images, out_type=tf.int64)
    message = tf.strings.format("request holds {} images of {} " + unit + " in all: the limit is {} " + unit
                                + " per request (" + key + ")", [count, total, tf.constant(limit, tf.int64)])
    return tf.debugging.Assert(total <= limit, [message])


def _checked_bytes(images: tf.Tensor, max_bytes: int | None) -> tf.Tensor:
    if max_bytes is None:
        return images
    with tf.control_dependencies([_within(images, request_bytes(images), max_bytes, "bytes",
                                          "model.max_request_bytes")]):
        return tf.identity(images)


def _checked_request(images: tf.Tensor, max_pixels: int | None, max_bytes: int | None,
                     max_image_pixels: int | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`images`, their formats and declared shapes, once bytes, formats, each image's pixels and the batch's
    pixels are within bounds, checked in that order. Each header is parsed once."""
    # Bytes first: the headers of a request already too big are not parsed.
    images = _checked_bytes(images, max_bytes)
    formats, shapes = _checked_headers(images, max_image_pixels)
    if max_pixels is not None:
        with tf.control_dependencies([_within(images, _total_pixels(shapes), max_pixels, "pixels",
                                              "model.max_request_pixels")]):
            shapes = tf.identity(shapes)
    return images, formats, shapes


def check_request_bounds(images: tf.Tensor, max_pixels: int | None, max_bytes: int | None,
                         max_image_pixels: int | None = None) -> tf.Tensor:
    """`images`, passed through once the batch's encoded bytes and declared pixels are within the bounds (None: no
    such bound); otherwise InvalidArgumentError (INVALID_ARGUMENT in TF Serving) naming the bound's model.yaml
    key, the request's total and the limit. Nothing is decoded: one header parse per image and two sums.
    Bytes are checked first; then each image against `max_image_pixels`, then the pixels in all.
    """
    if max_pixels is None:
        return _checked_bytes(images, max_bytes)
    images, _, shapes = _checked_request(images, max_pixels, max_bytes, max_image_pixels)
    with tf.control_dependencies([shapes]):
        return tf.identity(images)


def jpeg_ratio(shape: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Index into JPEG_RATIOS of the largest reduction that keeps the image >= DOWNSCALE_MARGIN x size."""
    h, w = shape[0], shape[1]
    index = tf.constant(0)
    for i, ratio in enumerate(JPEG_RATIOS[1:], 1):
        fits = tf.logical_and(h // ratio >= DOWNSCALE_MARGIN * size[0], w // ratio >= DOWNSCALE_MARGIN * size[1])
        index = tf.where(fits, tf.constant(i), index)
    return index


def decode(data: tf.Tensor, size: tuple[int, int], max_pixels: int, fast_downscale: bool = True,
           swap: tf.Tensor | bool = False) -> tf.Tensor:
    """Encoded bytes -> uint8 [h, w, 3] RGB. Grayscale, CMYK and alpha become RGB; a GIF gives its first frame.

    Memory is bounded by the pixel limit for every format: a GIF is cut to its first frame before decoding
    (export/gif.py), BMP variants are decoded in the graph or refused by name (export/bmp.py). `swap`: the
    image will be turned by 90 degrees (EXIF), so the JPEG scale is chosen against the transposed size.
    """
    formats, shapes = _checked_headers(tf.reshape(data, [1]), max_pixels)
    return _decode(data, formats[0], shapes[0], size, max_pixels, fast_downscale, swap)


def _decode(data: tf.Tensor, fmt: tf.Tensor | int, shape: tf.Tensor, size: tuple[int, int], max_pixels: int,
            fast_downscale: bool, swap: tf.Tensor | bool) -> tf.Tensor:
    """decode() of an image whose format and declared shape were already read and checked."""
    def jpeg():
        if not fast_downscale:
            return tf.io.decode_jpeg(data, channels=3)
        branches = [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r) for r in JPEG_RATIOS]
        ratio = tf.where(swap, jpeg_ratio(shape, (size[1], size[0])), jpeg_ratio(shape, size))
        return tf.switch_case(ratio, branches)

    def png():
        return tf.io.decode_png(data, channels=3)

    def first_gif_frame():
        cut, frame = gif.first_frame(data)
        # giflib allocates each frame's own raster before compositing it onto the screen: bound it too.
        with tf.control_dependencies([check_pixel_limit(frame, max_pixels)]):
            return tf.io.decode_gif(cut)[0]

    if isinstance(fmt, int):  # known when the graph is built (decode_batch's JPEG-only loop)
        image = [jpeg, png, first_gif_frame, lambda: bmp.decode(data)][fmt]()
    else:
        image = tf.switch_case(tf.maximum(fmt, 0), [jpeg, png, first_gif_frame, lambda: bmp.decode(data)])
    image.set_shape([None, None, 3])
    return image


def decode_and_resize(data: tf.Tensor, size: tuple[int, int], max_pixels: int, fast_downscale: bool = True,
                      exif_orientation: bool = True) -> tf.Tensor:
    """Encoded bytes -> float32 [size[0], size[1], 3] (0..255), upright when the JPEG's EXIF says how.

    The EXIF turn is applied to the model-sized result, resized to the transposed size when the turn swaps
    the axes: bilinear and antialiased resizing are separable and symmetric, so this is the same as turning
    the full image first, at the cost of turning 224x224 pixels instead of 12 MP.
    """
    batch = tf.reshape(data, [1])
    formats, shapes = _checked_headers(batch, max_pixels)
    o = exif.orientations(batch, tf.equal(formats, 0)) if exif_orientation else None
    return _decode_and_resize(data, formats[0], shapes[0], None if o is None else o[0], size, max_pixels,
                              fast_downscale)


def _decode_and_resize(data: tf.Tensor, fmt: tf.Tensor | int, shape: tf.Tensor, o: tf.Tensor | None,
                       size: tuple[int, int], max_pixels: int, fast_downscale: bool) -> tf.Tensor:
    """decode_and_resize() of an image whose format, declared shape and EXIF orientation (None: not applied)
    were already read and checked."""
    def upright():
        return resize(_decode(data, fmt, shape, size, max_pixels, fast_downscale, False), size)

    if o is None:
        return upright()

    def turned():
        swap = exif.swaps_axes(o)
        image = _decode(data, fmt, shape, size, max_pixels, fast_downscale, swap)
        return tf.cond(swap,
                       lambda: exif.orient(resize(image, (size[1], size[0])), o),
                       lambda: exif.orient(resize(image, size), o))

    # Nearly every image is upright (orientation 1): it skips the turn's control flow.
    out = tf.cond(tf.equal(o, 1), upright, turned)
    out.set_shape([size[0], size[1], 3])
    return out


def resize(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """uint8 or float [h, w, 3] -> float32 [size[0], size[1], 3] in the 0..255 range.

    Plain bilinear interpolation reads a 2x2 neighbourhood, so it skips source pixels (and aliases) only when
    it shrinks by more than 2; only then is the antialiased filter, which reads every source pixel and costs
    about ten times as much, used. Both filters have non-negative weights: the result stays in 0..255.
    """
    # uint8 goes into the resize kernel as it is: the kernel converts each pixel as it reads it, with the same
    # result to the bit, while a cast first would write a float32 copy of the whole decoded image (144 MB for
    # 12 MP; `make bench`: full-size decode of 4000x3000 JPEGs 131 -> 85 ms and 672 -> 169 MB for 4 images).
    shape = tf.shape(image)
    shrink = tf.maximum(shape[0] / size[0], shape[1] / size[1])
    out = tf.cond(
        shrink > ANTIALIAS_ABOVE,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear"),
    )
    return tf.cast(out, tf.float32)


def normalize(images: tf.Tensor, mode: str) -> tf.Tensor:
    """float32 RGB 0..255 [..., 3] -> the model's input, as keras.applications' preprocess_input(mode=...)."""
    if mode == "caffe":
        # RGB -> BGR. Reversing the last axis of a [n, h, w, 3] tensor costs ~1 ms per 224x224 image on a Zen 3
        # (TensorFlow's reverse kernel on a short inner axis), as much as decoding the image; the same reversal of
        # the [-1, 3] view is a fifth of that and gives the same bits on any device (`make bench`).
        bgr = tf.reshape(tf.reverse(tf.reshape(images, [-1, 3]), [1]), tf.shape(images))
        return bgr - tf.constant(_CAFFE_BGR_MEAN, tf.float32)
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "torch":
        return (images / 255.0 - tf.constant(_TORCH_MEAN, tf.float32)) / tf.constant(_TORCH_STD, tf.float32)
    if mode == "none":
        return images
    raise ValueError(f"unknown normalization {mode!r}: use one of {', '.join(NORMALIZATIONS)}")


def decode_batch(images: tf.Tensor, size: tuple[int, int], max_pixels: int, fast_downscale: bool = True,
                 exif_orientation: bool = True, max_request_pixels: int | None = None,
                 max_request_bytes: int | None = None) -> tf.Tensor:
    """tf.string [n] -> float32 [n, h, w, 3] (0..255).

    The whole batch is checked first (bytes, formats, each image's and the batch's pixels), from the headers
    alone, each parsed once and, where the format allows, for the whole batch at once; EXIF orientations are
    read the same way. Only then is any image decoded. Images differ in size, so each is decoded and resized
    on its own; map_fn runs several at once on the inter-op pool.

    JPEGs, nearly all of the traffic, go through a loop of their own. A loop whose body can take any format
    carries the PNG, GIF and BMP decoders as untaken branches, and TensorFlow's executor still passes a dead
    signal through each of their ops for every image: 0.12 ms per image on a Zen 3, a third of a small JPEG's
    whole preprocessing (`make bench`; docs/client-and-bench.md).
    """
    images, formats, shapes = _checked_request(images, max_request_pixels, max_request_bytes, max_pixels)
    is_jpeg = tf.equal(formats, 0)
    turns = exif.orientations(images, is_jpeg) if exif_orientation else None
    out_spec = tf.TensorSpec([size[0], size[1], 3], tf.float32)

    def loop(where, fmt):
        # map_fn takes tensors only: a format known at build time (int) and an absent orientation stay in Python.
        index = tf.where(where)
        elems = {"data": subset(images, where), "shape": tf.gather_nd(shapes, index)}
        if not isinstance(fmt, int):
            elems["fmt"] = tf.gather_nd(fmt, index)
        if turns is not None:
            elems["o"] = tf.gather_nd(turns, index)

        def one(e):
            return _decode_and_resize(e["data"], e.get("fmt", fmt), e["shape"], e.get("o"), size, max_pixels,
                                      fast_downscale)

        return tf.cast(index[:, 0], tf.int32), tf.map_fn(one, elems, fn_output_signature=out_spec)

    jpeg_index, jpeg_pixels = loop(is_jpeg, 0)
    other_index, other_pixels = loop(tf.logical_not(is_jpeg), formats)
    # Stitching copies every pixel of the batch: only a request that mixes formats pays for it.
    pixels = tf.cond(tf.reduce_all(is_jpeg), lambda: tf.identity(jpeg_pixels),
                     lambda: tf.dynamic_stitch([jpeg_index, other_index], [jpeg_pixels, other_pixels]))
    pixels.set_shape([None, size[0], size[1], 3])
    return pixels
