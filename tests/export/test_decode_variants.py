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


def _app(n: int, body: bytes) -> bytes:
    return bytes([0xFF, 0xE0 + n]) + (len(body) + 2).to_bytes(2, "big") + body


def test_the_batched_look_for_exif_gives_the_walks_own_answer():
    """issue 16: orientations() looks for the Exif segment for the whole batch at once and walks only where it
    found one; every answer must be the walk's own, including segments cut by the end of the bytes (the walk reads
    missing bytes as 0), an Exif segment after three others, and one too late."""
    jpeg = corpus.save(corpus.photo(16, 16), "JPEG")
    turned = corpus.with_exif(jpeg, 6)
    exif_segment = turned[2:turned.index(b"Exif") + 6 + 200]  # FF E1, length, "Exif\0\0", the TIFF block
    cut = turned.index(b"Exif") + 5  # "Exif\0" and the end: the walk matches, then reads no TIFF header
    filler = _app(2, b"\0" * 65531)  # a 64 KiB APP2 (ICC-like) segment
    samples = [
        jpeg, turned, turned[:cut], turned[:cut + 1], jpeg[:2] + b"\xff\xe1\x00\x08Exif", b"Exif\x00\x00",
        jpeg[:2] + _app(0, b"JFIF\0" + b"\0" * 9) + _app(1, b"http://ns.adobe.com/xap/1.0/\0") + exif_segment
        + jpeg[2:],
        jpeg[:2] + filler * 3 + exif_segment + jpeg[2:],  # the 4th segment, inside the prefix: found
        jpeg[:2] + filler * 4 + exif_segment + jpeg[2:],  # the 5th: not looked at
        jpeg[:2] + _app(1, b"\0" * 10) + turned[2:],  # an APP1 that is not Exif, then the Exif one
        jpeg[:2] + b"\xff\xe1\xff\xff" + b"Exif\0\0",  # a length past the end
        b"", b"\xff\xd8",
    ]
    # (the walk itself cannot index empty bytes; nothing can be found in them)
    walked = [int(exif._walk(tf.strings.substr(tf.constant(d), 0, 65536 * 4))) if d else 1 for d in samples]
    assert int(exif.orientation(tf.constant(turned))) == 6 and walked[1] == 6 and walked[7] == 6 and walked[8] == 1 and walked[9] == 6
    batched = exif.orientations(tf.constant(samples), tf.constant([True] * len(samples))).numpy().tolist()
    assert batched == walked
    assert [int(exif.orientation(tf.constant(d))) for d in samples] == walked
    not_jpeg = exif.orientations(tf.constant(samples[:2]), tf.constant([True, False])).numpy().tolist()
    assert not_jpeg == [1, 1]


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
