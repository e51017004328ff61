"""In-graph GIF helper: cut a GIF down to its first frame before TensorFlow decodes it.

Why: tf.io.decode_gif (tensorflow/core/lib/gif/gif_io.cc) calls giflib's DGifSlurp, which reads *every* frame,
and returns [frames, screen_height, screen_width, 3]. A 1.4 MB GIF of 100 frames of 4000x4000 cost 1.5 GB and
18 s for one request although only the first frame is used. Walking the block structure (GIF89a spec,
https://www.w3.org/Graphics/GIF/spec-gif89a.txt, sections 17-27) up to the end of the first image and appending
the trailer (0x3B) makes the decoder see one frame, so memory is one screen whatever the frame count.

The walk is a tf.while_loop over block and sub-block headers, so it works inside the SavedModel (no Python).
Every step moves forward by at least one byte, and the number of steps is capped (MAX_STEPS) so a file of
one-byte sub-blocks cannot keep a request busy.
"""
from __future__ import annotations

import tensorflow as tf

# Steps of the walk: one per extension or image header and one per data sub-block (up to 255 bytes each).
# A 40 MP first frame, LZW at the worst 12 bits per pixel, in 255-byte sub-blocks needs ~235k; the cap is
# far above any real encoder's output yet keeps the walk under about a second.
MAX_STEPS = 300_000

_SEEK, _EXTENSION, _IMAGE, _DONE, _BAD = 0, 1, 2, 3, 4
TRAILER = b"\x3b"


def _table_size(packed: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table a packed-fields byte announces (flag 0x80, size 3 * 2^(n+1))."""
    return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8), 0)


def first_frame(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(GIF bytes holding only the first image followed by the trailer, [frame_height, frame_width]).

    Fails with InvalidArgumentError naming the problem when no complete first image is found.
    """
    raw = tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int64)
    n = tf.size(raw, out_type=tf.int64)

    def at(i):
        i = tf.cast(i, tf.int64)
        return tf.gather(raw, tf.clip_by_value(i, tf.constant(0, tf.int64), tf.maximum(n - 1, 0)))

    start = 13 + _table_size(at(10))  # header (6) + logical screen descriptor (7) + global colour table

    seek, extension, image, done, bad = (tf.constant(m, tf.int64) for m in (_SEEK, _EXTENSION, _IMAGE, _DONE, _BAD))

    def step(pos, mode, frame, steps):
        c = at(pos)
        # _SEEK: an extension (0x21 label, sub-blocks) or the image descriptor (0x2C, 9 bytes, colour table,
        # LZW minimum code size, sub-blocks); anything else before the first image (the trailer 0x3B included)
        # means there is no image.
        is_ext, is_img = tf.equal(c, 0x21), tf.equal(c, 0x2C)
        image_start = pos + 10 + _table_size(at(pos + 9)) + 1
        seek_pos = tf.where(is_ext, pos + 2, tf.where(is_img, image_start, pos))
        seek_mode = tf.where(is_ext, extension, tf.where(is_img, image, bad))
        seek_frame = tf.where(is_img, pos, frame)
        # _EXTENSION / _IMAGE: a sub-block of c bytes; c == 0 ends the block.
        sub_pos = pos + 1 + c
        sub_mode = tf.where(tf.equal(c, 0), tf.where(tf.equal(mode, image), done, seek), mode)
        seeking = tf.equal(mode, seek)
        return (tf.where(seeking, seek_pos, sub_pos), tf.where(seeking, seek_mode, sub_mode),
                tf.where(seeking, seek_frame, frame), steps + 1)

    def more(pos, mode, frame, steps):
        return tf.logical_and(tf.logical_and(mode < done, pos < n), steps < MAX_STEPS)

    pos, mode, frame, steps = tf.while_loop(
        more, step, (start, seek, tf.constant(-1, tf.int64), tf.constant(0, tf.int64)),
        parallel_iterations=1,
    )
    ok = tf.debugging.Assert(
        tf.logical_and(tf.equal(mode, done), pos <= n),
        ["GIF has no complete first image (truncated, malformed, or more than", MAX_STEPS, "blocks)"],
    )
    with tf.control_dependencies([ok]):
        cut = tf.strings.join([tf.strings.substr(data, tf.constant(0, tf.int64), pos), TRAILER])
    # The image descriptor: left, top, width, height (little-endian 16-bit) after the 0x2C byte.
    size = tf.stack([at(frame + 7) + 256 * at(frame + 8), at(frame + 5) + 256 * at(frame + 6)])
    return cut, size
