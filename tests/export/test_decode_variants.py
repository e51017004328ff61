"""issue 13: the graph helpers behind GIF first-frame cutting, BMP variants and EXIF orientation, eagerly."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from export import exif, gif, preprocess
from tools.validate import corpus


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_is_pillows_exif_transpose(orientation):
    pixels = corpus.photo(5, 7, seed=orientation)
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    got = exif.orient(tf.constant(pixels), tf.constant(orientation, tf.int32)).numpy()
    assert got.shape == expected.shape and (got == expected).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_read_from_little_and_big_endian_exif(orientation):
    jpeg = corpus.save(corpus.photo(16, 16), "JPEG")
    assert int(exif.orientation(tf.constant(corpus.with_exif(jpeg, orientation)))) == orientation
    big = corpus.with_exif(jpeg, None, corpus.big_endian_exif(orientation))
    assert int(exif.orientation(tf.constant(big))) == orientation


def test_orientation_defaults_to_upright():
    jpeg = corpus.save(corpus.photo(16, 16), "JPEG")
    assert int(exif.orientation(tf.constant(jpeg))) == 1  # no Exif segment at all
    assert int(exif.orientation(tf.constant(corpus.with_exif(jpeg, 9)))) == 1
    assert int(exif.orientation(tf.constant(corpus.with_exif(jpeg, None, b"II*\x00\xff\xff")))) == 1
    assert int(exif.orientation(tf.constant(jpeg[:4]))) == 1


def test_orientation_skips_the_walk_only_where_it_could_find_nothing():
    """issue 16: the signature search that skips the marker walk gives the walk's own answer, including for a
    signature cut short by the end of the bytes (the walk reads missing bytes as 0)."""
    jpeg = corpus.save(corpus.photo(16, 16), "JPEG")
    turned = corpus.with_exif(jpeg, 6)
    cut = turned.index(b"Exif") + 5  # "Exif\0" and the end: the walk matches, then reads no TIFF header
    samples = [jpeg, turned, turned[:cut], turned[:cut + 1], jpeg[:2] + b"\xff\xe1\x00\x08Exif", b"Exif\x00\x00"]
    for data in samples:
        prefix = tf.strings.substr(tf.constant(data), 0, 65536 * 4)
        assert int(exif.orientation(tf.constant(data))) == int(exif._walk(prefix)), data[:24]
    assert int(exif.orientation(tf.constant(turned))) == 6  # the search does find a real segment


def test_turned_jpeg_decodes_to_the_upright_size():
    jpeg = corpus.with_exif(corpus.save(corpus.photo(30, 50), "JPEG"), 6)
    out = preprocess.decode_and_resize(tf.constant(jpeg), (40, 48), 10_000)
    assert out.shape == (40, 48, 3)
    # Off: as stored. On: the stored image turned clockwise; both resized to the model input.
    stored = preprocess.decode_and_resize(tf.constant(jpeg), (48, 40), 10_000, exif_orientation=False).numpy()
    assert np.abs(out.numpy() - np.rot90(stored, k=-1)).max() < 1e-3


def test_first_frame_cut_keeps_only_the_first_image():
    red = Image.new("RGB", (40, 30), (255, 0, 0))
    blue = Image.new("RGB", (40, 30), (0, 0, 255))
    data = corpus.save(red, "GIF", save_all=True, append_images=[blue] * 5)
    cut, size = gif.first_frame(tf.constant(data))
    assert tuple(size.numpy()) == (30, 40)
    frames = tf.io.decode_gif(cut)
    assert frames.shape[0] == 1 and tuple(frames[0, 0, 0].numpy()) == (255, 0, 0)
    assert len(cut.numpy()) < len(data)
    assert Image.open(io.BytesIO(cut.numpy())).n_frames == 1


def test_first_frame_of_rechunked_gif_is_the_same():
    data = corpus.save(Image.fromarray(corpus.photo(60, 80)).quantize(100), "GIF")
    for size in (1, 7, 255):
        cut, _ = gif.first_frame(tf.constant(corpus.rechunk_gif(data, size)))
        assert (tf.io.decode_gif(cut)[0].numpy() == corpus.rgb_of(data)).all()


@pytest.mark.parametrize("bpp", [1, 4, 8])
def test_palette_bmp_rows_with_padding(bpp):
    # Odd widths exercise the 4-byte row padding and partial last bytes.
    for width in (1, 3, 13):
        idx = (np.arange(5 * width).reshape(5, width) * 3) % 2 ** bpp
        table = np.random.default_rng(width).integers(0, 256, (2 ** bpp, 3), dtype=np.uint8)
        data = corpus.raw_bmp(corpus.packed_rows(idx, bpp), width, 5, bpp,
                              palette=b"".join(bytes([b, g, r, 0]) for r, g, b in table))
        got = preprocess.decode(tf.constant(data), (4, 4), 10_000).numpy()
        assert (got == table[idx]).all()
