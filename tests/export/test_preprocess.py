"""Eager-mode unit tests of the graph helpers that turn image bytes into model input."""
import numpy as np
import pytest
import tensorflow as tf

from export import preprocess as P
from tests.export import images

SIZE = (40, 48)
LIMIT = 10_000_000


@pytest.mark.parametrize(
    "fmt,data",
    [
        ("jpeg", images.jpeg(60, 80)),
        ("png", images.png(60, 80)),
        ("gif", images.encode(images.photo(60, 80), "GIF")),
        ("bmp", images.encode(images.photo(60, 80), "BMP")),
    ],
)
def test_declared_shape_reads_the_header_of_every_format(fmt, data):
    assert P.declared_shape(tf.constant(data)).numpy().tolist() == [60, 80]


def test_declared_shape_of_a_top_down_bmp_is_positive():
    data = bytearray(images.encode(images.photo(12, 10), "BMP"))
    height = int.from_bytes(data[22:26], "little")
    data[22:26] = (2 ** 32 - height).to_bytes(4, "little")  # negative height: rows stored top-down
    assert P.declared_shape(tf.constant(bytes(data))).numpy().tolist() == [12, 10]


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"GIF89a", b"\x89PNG\r\n\x1a\n\x00", np.random.default_rng(1).bytes(500)])
def test_unknown_or_cut_bytes_fail_with_a_message_that_names_the_problem(data):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty, corrupt or not JPEG, PNG, GIF or BMP"):
        P.decode(tf.constant(data), SIZE, LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        images.jpeg(60, 80),
        images.png(60, 80),
        images.png(60, 80, mode="RGBA"),
        images.png(60, 80, mode="L"),
        images.encode(images.photo(60, 80), "JPEG", mode="L"),
        images.encode(images.photo(60, 80), "JPEG", mode="CMYK"),
        images.encode(images.photo(60, 80), "BMP"),
    ],
    ids=["jpeg", "png", "png-alpha", "png-gray", "jpeg-gray", "jpeg-cmyk", "bmp"],
)
def test_decode_gives_three_channel_rgb(data):
    image = P.decode(tf.constant(data), SIZE, LIMIT)
    assert image.dtype == tf.uint8 and image.shape == (60, 80, 3)


def test_cmyk_jpeg_decodes_to_the_same_colors_as_rgb():
    pixels = images.photo(60, 80)
    rgb = P.decode(tf.constant(images.encode(pixels, "JPEG", quality=95)), SIZE, LIMIT).numpy().astype(float)
    cmyk = P.decode(tf.constant(images.encode(pixels, "JPEG", mode="CMYK", quality=95)), SIZE, LIMIT).numpy()
    assert np.abs(rgb - cmyk).mean() < 12


def test_gif_gives_its_first_frame():
    image = P.decode(tf.constant(images.two_frame_gif()), SIZE, LIMIT).numpy()
    assert image[..., 0].mean() > 200 and image[..., 2].mean() < 50


def test_truncated_jpeg_is_invalid_argument():
    data = images.jpeg(200, 200)
    with pytest.raises(tf.errors.InvalidArgumentError, match="JPEG"):
        P.decode(tf.constant(data[: len(data) // 2]), SIZE, LIMIT)


@pytest.mark.parametrize("data", [images.with_jpeg_size(images.jpeg(), 60000, 60000),
                                  images.with_png_size(images.png(), 100000, 100000)], ids=["jpeg", "png"])
def test_declared_size_over_the_limit_is_refused_before_decoding(data):
    with pytest.raises(tf.errors.InvalidArgumentError, match="image declares") as err:
        P.decode(tf.constant(data), SIZE, LIMIT)
    assert "limit" in str(err.value)


def test_pixel_limit_is_exact():
    data = tf.constant(images.jpeg(100, 100))
    assert P.decode(data, SIZE, 10_000, fast_downscale=False).shape == (100, 100, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image declares"):
        P.decode(data, SIZE, 9_999)


@pytest.mark.parametrize("shape,expected", [((100, 100), 2), ((400, 400), 8), ((4000, 3000), 8), ((3000, 4000), 8),
                                            ((79, 2000), 1), ((160, 100), 2), ((39, 39), 1)])
def test_jpeg_ratio_is_the_largest_that_keeps_the_input_size(shape, expected):
    ratio = P.JPEG_RATIOS[int(P.jpeg_ratio(tf.constant(shape, tf.int64), (40, 40)))]
    assert ratio == expected
    assert ratio == 1 or (shape[0] // ratio >= 40 and shape[1] // ratio >= 40)


def test_fast_downscale_decodes_large_jpegs_smaller_with_the_same_picture():
    data = tf.constant(images.jpeg(800, 960))
    small = P.decode(data, SIZE, LIMIT, fast_downscale=True)
    full = P.decode(data, SIZE, LIMIT, fast_downscale=False)
    assert small.shape == (100, 120, 3) and full.shape == (800, 960, 3)
    a, b = P.resize(small, SIZE).numpy(), P.resize(full, SIZE).numpy()
    assert np.abs(a - b).mean() < 3.0


@pytest.mark.parametrize("shrink", [2, 3, 5])
def test_resize_does_not_alias_fine_detail(shrink):
    stripes = np.zeros((40 * shrink, 48 * shrink, 3), np.uint8)
    stripes[::2] = 255  # one-pixel stripes: a downscale that skips rows turns them into solid bands
    out = P.resize(tf.constant(stripes), SIZE).numpy()
    assert out.shape == (40, 48, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
    assert np.abs(out - 127.5).max() < 45


def test_the_stripes_test_can_fail():
    stripes = np.zeros((120, 144, 3), np.uint8)
    stripes[::2] = 255
    aliased = tf.image.resize(stripes, SIZE, method="bilinear").numpy()
    assert np.abs(aliased - 127.5).max() > 100


def test_resize_within_a_factor_of_two_is_plain_bilinear():
    pixels = images.photo(60, 70)
    ours = P.resize(tf.constant(pixels), SIZE).numpy()
    plain = tf.image.resize(pixels, SIZE, method="bilinear").numpy()
    np.testing.assert_array_equal(ours, plain)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_normalize_matches_keras_applications(mode):
    from keras.applications import imagenet_utils

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    ours = P.normalize(tf.constant(pixels), mode).numpy()
    theirs = imagenet_utils.preprocess_input(pixels.copy(), mode=mode, data_format="channels_last")
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 5, 6, 3), (5, 6, 3), (0, 4, 4, 3)])
def test_caffe_normalization_reverses_the_channels_to_the_bit(shape):
    # The channels are reversed on a [-1, 3] view (faster); it must equal the plain reversal exactly.
    pixels = np.random.default_rng(3).uniform(0, 255, shape).astype(np.float32)
    plain = pixels[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    ours = P.normalize(tf.constant(pixels), "caffe").numpy()
    assert ours.shape == shape
    np.testing.assert_array_equal(ours, plain)


def test_normalize_none_is_identity_and_unknown_is_an_error():
    x = tf.constant([[1.0, 2.0, 3.0]])
    assert np.array_equal(P.normalize(x, "none").numpy(), x.numpy())
    with pytest.raises(ValueError, match="unknown normalization"):
        P.normalize(x, "imagenet")


def test_decode_batch_handles_mixed_sizes_and_formats_and_an_empty_batch():
    batch = tf.constant([images.jpeg(30, 90), images.png(200, 50), images.jpeg(1, 1)])
    assert P.decode_batch(batch, SIZE, LIMIT).shape == (3, 40, 48, 3)
    assert P.decode_batch(tf.constant([], tf.string), SIZE, LIMIT).shape == (0, 40, 48, 3)


@pytest.mark.parametrize("exif_orientation", [True, False])
def test_decode_batch_keeps_request_order_across_its_jpeg_and_other_format_loops(exif_orientation):
    from tools.validate import corpus

    # JPEGs and the other formats are decoded in separate loops and stitched back: every image must come back
    # in its own place, equal to decoding it alone; a turned JPEG and an all-JPEG / no-JPEG batch included.
    data = [images.png(200, 50), images.jpeg(30, 90), images.encode(images.photo(60, 80), "GIF"),
            corpus.with_exif(images.jpeg(50, 70, seed=2), 6), images.encode(images.photo(45, 47), "BMP"),
            images.jpeg(90, 30, seed=3)]
    alone = [P.decode_and_resize(tf.constant(d), SIZE, LIMIT, exif_orientation=exif_orientation).numpy()
             for d in data]
    for batch in (data, data[1::2], [data[0], data[2], data[4]]):
        expected = [alone[data.index(d)] for d in batch]
        got = P.decode_batch(tf.constant(batch), SIZE, LIMIT, exif_orientation=exif_orientation).numpy()
        np.testing.assert_array_equal(got, np.stack(expected))
    assert not np.array_equal(alone[3], P.decode_and_resize(tf.constant(data[3]), SIZE, LIMIT,
                                                            exif_orientation=not exif_orientation).numpy())


def test_declared_shapes_reads_a_mixed_batch_at_once():
    batch = [images.jpeg(30, 90), images.png(200, 50), images.encode(images.photo(7, 9), "GIF"),
             images.encode(images.photo(12, 10), "BMP"), images.jpeg(1, 1)]
    assert P.declared_shapes(tf.constant(batch)).numpy().tolist() == [[30, 90], [200, 50], [7, 9], [12, 10], [1, 1]]
    assert P.declared_shapes(tf.constant([], tf.string)).shape == (0, 2)


def test_a_png_whose_declared_sides_overflow_int64_when_multiplied_is_refused_by_the_image_limit():
    # (2^32 - 1)^2 wraps around int64 to a negative number, which used to pass `h * w <= limit`; libpng then
    # refused the file, but the pixel limit must not depend on that.
    from tools.validate import corpus

    huge = corpus._png_size(corpus.png_of(corpus.photo(8, 8)), 2 ** 32 - 1, 2 ** 32 - 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image declares"):
        P.decode_batch(tf.constant([huge]), SIZE, LIMIT)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image declares"):
        P.decode(tf.constant(huge), SIZE, LIMIT)
