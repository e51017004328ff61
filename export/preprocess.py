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


def _uint(data: tf.Tensor, offset: int, length: int, big_endian: bool) -> tf.Tensor:
    """The unsigned integer stored in `length` bytes at `offset` (the caller checked the length)."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8), tf.int64)
    weights = [256 ** i for i in range(length)]
    return tf.reduce_sum(raw * tf.constant(weights[::-1] if big_endian else weights, tf.int64))


def image_format(data: tf.Tensor) -> tf.Tensor:
    """0 JPEG, 1 PNG, 2 GIF, 3 BMP, -1 anything else, from the magic bytes alone."""
    head = tf.strings.substr(data, 0, 8)
    return tf.case(
        [
            (tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"), lambda: tf.constant(0)),
            (tf.equal(head, b"\x89PNG\r\n\x1a\n"), lambda: tf.constant(1)),
            (tf.logical_or(tf.equal(tf.strings.substr(head, 0, 6), b"GIF87a"),
                           tf.equal(tf.strings.substr(head, 0, 6), b"GIF89a")), lambda: tf.constant(2)),
            (tf.equal(tf.strings.substr(head, 0, 2), b"BM"), lambda: tf.constant(3)),
        ],
        default=lambda: tf.constant(-1),
    )


def declared_shape(data: tf.Tensor) -> tf.Tensor:
    """[height, width] (int64) as the image header declares it, without decoding any pixel data.

    Fails with InvalidArgumentError for bytes that are not a supported image or whose header is cut short.
    """
    fmt = image_format(data)
    length = tf.strings.length(data)
    # The header fields read below must be present; substr past the end would silently return less.
    needed = tf.gather(tf.constant([4, 24, 10, 26]), tf.maximum(fmt, 0))
    check = tf.debugging.Assert(
        tf.logical_and(fmt >= 0, length >= needed), [UNSUPPORTED_MESSAGE, "bytes:", length]
    )
    with tf.control_dependencies([check]):
        fmt = tf.identity(fmt)

    def jpeg():
        return tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)

    def png():
        return tf.stack([_uint(data, 20, 4, True), _uint(data, 16, 4, True)])

    def gif():
        return tf.stack([_uint(data, 8, 2, False), _uint(data, 6, 2, False)])

    def bmp():
        # The 12-byte OS/2 header stores 16-bit sizes; it is refused by name in export/bmp.py.
        os2 = tf.equal(_uint(data, 14, 4, False), 12)

        def signed(offset):
            v = _uint(data, offset, 4, False)
            return tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))  # top-down BMPs store a negative height

        return tf.where(os2, tf.stack([_uint(data, 20, 2, False), _uint(data, 18, 2, False)]),
                        tf.stack([signed(22), signed(18)]))

    return tf.switch_case(tf.maximum(fmt, 0), [jpeg, png, gif, bmp])


def check_pixel_limit(shape: tf.Tensor, max_pixels: int) -> tf.Operation:
    h, w = shape[0], shape[1]
    return tf.debugging.Assert(
        tf.logical_and(tf.logical_and(h > 0, w > 0), h * w <= max_pixels),
        ["image declares", h, "x", w, "pixels; the limit is", tf.constant(max_pixels, tf.int64), "pixels"],
        summarize=8,
    )


def request_bytes(images: tf.Tensor) -> tf.Tensor:
    """Encoded bytes of a batch in all (int64)."""
    return tf.reduce_sum(tf.strings.length(images, unit="BYTE"))


def request_pixels(images: tf.Tensor, max_image_pixels: int | None = None) -> tf.Tensor:
    """Declared pixels of a batch in all (int64), from the headers alone; fails like declared_shape for an image
    that is not a supported format, and like check_pixel_limit for one over `max_image_pixels` (so an image too
    big on its own is named as such, not as a request too big).

    A GIF counts its screen once: only its first frame is ever decoded (export/gif.py). Sides are capped at 2^31
    before multiplying (a PNG or BMP header can declare up to 2^32 - 1), so a product stays below 2^62 and cannot
    wrap around; the sum is taken in float64, exact below 2^53 (far above any bound) and clamped to 2^62.
    """
    def shape(data):
        found = declared_shape(data)
        if max_image_pixels is None:
            return found
        with tf.control_dependencies([check_pixel_limit(found, max_image_pixels)]):
            return tf.identity(found)

    shapes = tf.map_fn(shape, images, fn_output_signature=tf.TensorSpec([2], tf.int64))
    sides = tf.minimum(shapes, 2 ** 31)
    total = tf.reduce_sum(tf.cast(sides[:, 0] * sides[:, 1], tf.float64))
    return tf.cast(tf.minimum(total, 2.0 ** 62), tf.int64)


def check_request_bounds(images: tf.Tensor, max_pixels: int | None, max_bytes: int | None,
                         max_image_pixels: int | None = None) -> tf.Tensor:
    """`images`, passed through once the batch's encoded bytes and declared pixels are within the bounds (None: no
    such bound); otherwise InvalidArgumentError (INVALID_ARGUMENT in TF Serving) naming the bound's model.yaml
    key, the request's total and the limit. Nothing is decoded: one header parse per image and two sums.
    Bytes are checked first; then each image against `max_image_pixels`, then the pixels in all.
    """
    count = tf.size(images, out_type=tf.int64)

    def within(total, limit, unit, key):
        # One formatted string, so TF Serving's message reads as one sentence with the numbers in it.
        message = tf.strings.format("request holds {} images of {} " + unit + " in all: the limit is {} " + unit
                                    + " per request (" + key + ")", [count, total, tf.constant(limit, tf.int64)])
        return tf.debugging.Assert(total <= limit, [message])

    if max_bytes is not None:
        # Bytes first: the headers of a request already too big are not parsed.
        with tf.control_dependencies([within(request_bytes(images), max_bytes, "bytes", "model.max_request_bytes")]):
            images = tf.identity(images)
    if max_pixels is not None:
        with tf.control_dependencies([within(request_pixels(images, max_image_pixels), max_pixels, "pixels",
                                             "model.max_request_pixels")]):
            images = tf.identity(images)
    return images


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
    shape = declared_shape(data)
    with tf.control_dependencies([check_pixel_limit(shape, max_pixels)]):
        fmt = tf.identity(image_format(data))

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
    if not exif_orientation:
        return resize(decode(data, size, max_pixels, fast_downscale), size)
    o = tf.cond(tf.equal(image_format(data), 0), lambda: exif.orientation(data), lambda: tf.constant(1, tf.int32))
    swap = exif.swaps_axes(o)
    image = decode(data, size, max_pixels, fast_downscale, swap=swap)
    out = tf.cond(
        swap,
        lambda: exif.orient(resize(image, (size[1], size[0])), o),
        lambda: exif.orient(resize(image, size), o),
    )
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
        return images[..., ::-1] - tf.constant(_CAFFE_BGR_MEAN, tf.float32)
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
    """tf.string [n] -> float32 [n, h, w, 3] (0..255). Images differ in size, so each is decoded on its own;
    map_fn runs several at once on the inter-op pool. With request bounds, the whole batch is checked against
    them before the first image is decoded."""
    def one(data):
        return decode_and_resize(data, size, max_pixels, fast_downscale, exif_orientation)

    images = check_request_bounds(images, max_request_pixels, max_request_bytes, max_pixels)
    return tf.map_fn(one, images, fn_output_signature=tf.TensorSpec([size[0], size[1], 3], tf.float32))
