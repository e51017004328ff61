"""In-graph GIF helper: cut a GIF down to its first frame before TensorFlow decodes it.

Why: tf.io.decode_gif (tensorflow/core/lib/gif/gif_io.cc) calls giflib's DGifSlurp, which reads *every* frame,
and returns [frames, screen_height, screen_width, 3]. A 1.4 MB GIF of 100 frames of 4000x4000 cost 1.5 GB and
18 s for one request although only the first frame is used. Walking the block structure (GIF89a spec,
https://www.w3.org/Graphics/GIF/spec-gif89a.txt, sections 17-27) up to the end of the first image and appending
the trailer (0x3B) makes the decoder see one frame, so memory is one screen whatever the frame count.

The walk is graph ops only (a tf.while_loop over windows of the file), so it works inside the SavedModel.
Its cost grows with the bytes before the end of the first frame, not with the frames after it.
"""
from __future__ import annotations

import tensorflow as tf

# The sub-block chains are followed a window at a time by pointer doubling (log2(window) vectorized gathers),
# not byte by byte: a graph while_loop step costs ~100 us, so a 1-byte-sub-block file of 1 MB would take a
# minute one block per step. Extensions are short (a small window); image data is long (a larger one).
EXTENSION_WINDOW = 512
IMAGE_WINDOW = 8192
# Extension blocks (graphic control, application, comment, ...) allowed before the first image; real files
# have one to five. Each costs a loop step, so a file of nothing but tiny extensions is refused instead.
MAX_EXTENSIONS = 64

TRAILER = b"\x3b"


def _table_size(packed: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table a packed-fields byte announces (flag 0x80, size 3 * 2^(n+1))."""
    return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8), 0)


def skip_subblocks(raw: tf.Tensor, pos: tf.Tensor, window_size: int) -> tf.Tensor:
    """Position just after the zero-length sub-block that ends the chain starting at pos; -1 if the data
    ends first. raw: the file's uint8 bytes."""
    n = tf.size(raw, out_type=tf.int64)
    WINDOW = window_size  # noqa: N806 (a constant of this walk)
    j = tf.range(WINDOW, dtype=tf.int32)

    def window(pos, end, windows):
        seg = tf.cast(raw[pos:pos + WINDOW], tf.int32)
        seg = tf.pad(seg, [[0, WINDOW - tf.size(seg)]], constant_values=-1)  # -1: past the end of the data
        # Each position points at the next sub-block's length byte; a terminator (0) or the end of the data
        # points at itself. Doubling the pointers log2(WINDOW) times follows up to WINDOW hops at once.
        nxt = tf.where(seg > 0, j + 1 + seg, j)
        for _ in range(WINDOW.bit_length() - 1):
            nxt = tf.where(nxt < WINDOW, tf.gather(nxt, tf.minimum(nxt, WINDOW - 1)), nxt)
        f = tf.cast(nxt[0], tf.int64)
        inside = f < WINDOW
        at_f = tf.gather(seg, tf.minimum(nxt[0], WINDOW - 1))
        end = tf.where(inside, tf.where(tf.equal(at_f, 0), pos + f + 1, tf.constant(-1, tf.int64)), end)
        return tf.where(inside, n, pos + f), end, windows + 1

    def more(pos, end, windows):
        return tf.logical_and(pos < n, tf.less(end, -1))

    _, end, _ = tf.while_loop(more, window, (tf.cast(pos, tf.int64), tf.constant(-2, tf.int64),
                                             tf.constant(0, tf.int64)), parallel_iterations=1)
    return tf.where(end < -1, tf.constant(-1, tf.int64), end)


def first_frame(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(GIF bytes holding only the first image followed by the trailer, [frame_height, frame_width]).

    Fails with InvalidArgumentError naming the problem when no complete first image is found.
    """
    raw = tf.io.decode_raw(data, tf.uint8)  # widened only a window or a byte at a time
    n = tf.size(raw, out_type=tf.int64)

    def at(i):
        i = tf.cast(i, tf.int64)
        value = tf.cast(tf.gather(raw, tf.clip_by_value(i, 0, tf.maximum(n - 1, 0))), tf.int64)
        return tf.where(tf.logical_and(i >= 0, i < n), value, tf.constant(-1, tf.int64))

    start = 13 + _table_size(at(10))  # header (6) + logical screen descriptor (7) + global colour table

    # Extensions before the first image: 0x21, a label byte, then a sub-block chain.
    def more(pos, count):
        return tf.logical_and(tf.logical_and(pos >= 0, tf.equal(at(pos), 0x21)), count <= MAX_EXTENSIONS)

    def extension(pos, count):
        return skip_subblocks(raw, pos + 2, EXTENSION_WINDOW), count + 1

    frame, count = tf.while_loop(more, extension, (start, tf.constant(0, tf.int64)), parallel_iterations=1)
    ok = tf.debugging.Assert(count <= MAX_EXTENSIONS, ["GIF has more than", MAX_EXTENSIONS,
                                                       "extension blocks before its first image"])
    with tf.control_dependencies([ok]):
        frame = tf.identity(frame)
    # The image descriptor (0x2C, left, top, width, height, packed), its colour table, the LZW code size byte.
    is_image = tf.logical_and(frame >= 0, tf.equal(at(frame), 0x2C))
    data_start = frame + 10 + _table_size(at(frame + 9)) + 1
    end = tf.where(is_image, skip_subblocks(raw, data_start, IMAGE_WINDOW), tf.constant(-1, tf.int64))
    ok = tf.debugging.Assert(tf.logical_and(end > 0, end <= n),
                             ["GIF has no complete first image (no image block, or truncated)"])
    with tf.control_dependencies([ok]):
        cut = tf.strings.join([tf.strings.substr(data, tf.constant(0, tf.int64), end), TRAILER])
    size = tf.stack([at(frame + 7) + 256 * at(frame + 8), at(frame + 5) + 256 * at(frame + 6)])
    return cut, size
