"""issue 13: the per-request bounds (model.max_request_pixels / max_request_bytes) in eager mode and in a graph:
exact at the limit, named in the message, checked before any decode, no int64 wrap-around."""
import struct

import pytest
import tensorflow as tf

from export import preprocess
from tools.validate import corpus

JPEG = corpus.save(corpus.photo(30, 40, seed=5), "JPEG", quality=90)  # 1200 pixels


def refused(images, max_pixels=None, max_bytes=None, max_image_pixels=None) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as exc:
        preprocess.check_request_bounds(tf.constant(images), max_pixels, max_bytes, max_image_pixels)
    return exc.value.message


def test_totals_come_from_the_bytes_and_headers():
    images = tf.constant([JPEG] * 4)
    assert preprocess.request_bytes(images).numpy() == 4 * len(JPEG)
    assert preprocess.request_pixels(images).numpy() == 4 * 1200


def test_pixel_bound_is_exact_and_named():
    preprocess.check_request_bounds(tf.constant([JPEG] * 4), 4800, None)
    assert ("request holds 4 images of 4800 pixels in all: the limit is 4799 pixels per request "
            "(model.max_request_pixels)") in refused([JPEG] * 4, max_pixels=4799)


def test_byte_bound_is_exact_and_named():
    preprocess.check_request_bounds(tf.constant([JPEG] * 3), None, 3 * len(JPEG))
    message = refused([JPEG] * 3, max_bytes=3 * len(JPEG) - 1)
    assert (f"request holds 3 images of {3 * len(JPEG)} bytes in all: the limit is {3 * len(JPEG) - 1} bytes per "
            "request (model.max_request_bytes)") in message


def test_bytes_are_checked_before_any_header_is_read():
    # Not images at all: a header parse would fail with the unsupported-format message first.
    message = refused([b"x" * 100] * 3, max_pixels=10, max_bytes=299)
    assert "model.max_request_bytes" in message


def test_an_image_over_its_own_limit_is_named_as_such_before_the_request_total():
    huge = corpus._png_size(corpus.png_of(corpus.photo(8, 8)), 10_000, 10_000)
    message = refused([huge], max_pixels=50_000_000, max_image_pixels=40_000_000)
    assert "image declares" in message and "max_request_pixels" not in message


def test_huge_declared_sides_do_not_wrap_around():
    # PNG stores 32-bit sides: (2^32 - 1)^2 overflows int64 and used to be able to turn negative.
    huge = corpus._png_size(corpus.png_of(corpus.photo(8, 8)), 2 ** 32 - 1, 2 ** 32 - 1)
    assert preprocess.request_pixels(tf.constant([huge] * 3)).numpy() == 2 ** 62
    assert f"images of {2 ** 62} pixels in all" in refused([huge] * 3, max_pixels=10 ** 9)


def test_a_gif_counts_its_screen_once_whatever_its_frames():
    from PIL import Image

    frames = [Image.new("P", (20, 10), i) for i in range(5)]
    gif = corpus.save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)
    assert preprocess.request_pixels(tf.constant([gif])).numpy() == 200


def test_an_empty_batch_passes():
    empty = tf.constant([], tf.string)
    assert preprocess.check_request_bounds(empty, 1, 1).shape == (0,)


def test_in_a_graph_the_batch_is_refused_before_decoding_and_served_within():
    size = (40, 48)
    decode = tf.function(lambda images: preprocess.decode_batch(images, size, 40_000_000, max_request_pixels=4800,
                                                                max_request_bytes=10 ** 6))
    assert decode(tf.constant([JPEG] * 4)).shape == (4, 40, 48, 3)
    # A fifth image, its scan cut short: a decode would fail with "Invalid JPEG data"; the request bound comes first.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"assertion failed: \[request holds 5 images of 6000 "
                                                             r"pixels in all: the limit is 4800 pixels per request"):
        decode(tf.constant([JPEG] * 4 + [JPEG[:-60]]))


def test_padded_jpeg_has_the_asked_size_and_still_decodes():
    for size in (2000, 70_000, 65_537 + 1500, 200_003):
        data = corpus.jpeg_with_padding(size)
        assert len(data) == size
        assert tf.io.decode_jpeg(data).shape == (24, 32, 3)
    with pytest.raises(ValueError):
        corpus.jpeg_with_padding(10)
    assert struct.unpack(">H", corpus.jpeg_with_padding(5000)[4:6])[0] >= 2
