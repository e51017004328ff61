"""In-graph EXIF orientation for JPEGs: read tag 0x0112 of IFD0 and turn the pixels as the camera meant.

Phones store portrait photos sideways and set Orientation (6 or 8); image viewers and Pillow's
`ImageOps.exif_transpose` turn them upright, TensorFlow's decoders do not, so without this a portrait photo
reaches the model rotated. Sources: EXIF 2.32 (CIPA DC-008) section 4.6.4 tag 0x0112 and section 4.5.4 the
APP1 "Exif\\0\\0" segment holding a TIFF header; TIFF 6.0 section 2 for the byte order, IFD and entry layout.
Pillow's mapping of the eight values to transposes (src/PIL/ImageOps.py, exif_transpose) is what
`orient` reproduces.

Cost when there is no EXIF: for the whole batch at once, the 10 bytes at each of the first few segment starts
(`orientations`); the turn itself is applied to the already resized model-sized image (see
preprocess.decode_and_resize).
"""
from __future__ import annotations

import tensorflow as tf

# APPn marker segments looked at after SOI. EXIF requires its APP1 right after SOI; JFIF files put APP0 first,
# and a few writers put an ICC (APP2) or XMP (APP1) segment before it. The look is unrolled (no graph loop:
# a loop step costs ~100 us, the whole unrolled look a few tens), and stops at the first non-APPn marker.
MAX_SEGMENTS = 4
# IFD0 entries scanned for the orientation tag (cameras write 10-20).
MAX_ENTRIES = 64
ORIENTATION_TAG = 0x0112
# FF E1, the segment length (2 bytes), then "Exif\0\0": the bytes at these offsets of the APP1 segment.
_SIGNATURE = {0: 0xFF, 1: 0xE1, 4: 0x45, 5: 0x78, 6: 0x69, 7: 0x66, 8: 0x00, 9: 0x00}
_SIGNATURE_AT = list(_SIGNATURE)
_SIGNATURE_BYTES = list(_SIGNATURE.values())
# The first 256 KiB hold the marker segments looked at (each at most 64 KiB).
_PREFIX = 65536 * 4


def orientation(data: tf.Tensor) -> tf.Tensor:
    """int32 1..8 from the first APP1 Exif segment of JPEG bytes; 1 when absent, unreadable or out of range."""
    return orientations(tf.reshape(data, [1]), tf.constant([True]))[0]


def orientations(images: tf.Tensor, jpeg: tf.Tensor) -> tf.Tensor:
    """int32 [n] orientations of a batch (1 where `jpeg` is false).

    Most JPEGs carry no EXIF. `_walk`'s look for the APP1 Exif segment is first made for the whole batch at once,
    reading the 10 bytes at each segment start (no copy of any file); only the images where it finds one are
    walked, with the same answers: the look is the walk's own first half, on the same bytes.
    """
    found = _exif_segment_found(images)
    walk = tf.where(tf.logical_and(jpeg, found))
    prefixes = tf.strings.substr(tf.gather_nd(images, walk), 0, _PREFIX)
    read = tf.map_fn(_walk, prefixes, fn_output_signature=tf.TensorSpec([], tf.int32))
    return tf.tensor_scatter_nd_update(tf.ones(tf.shape(images), tf.int32), walk, read)


def _exif_segment_found(images: tf.Tensor) -> tf.Tensor:
    """bool [n]: `_walk` would find an APP1 Exif segment in the first _PREFIX bytes (the same look, vectorized)."""
    n = tf.minimum(tf.cast(tf.strings.length(images), tf.int64), _PREFIX)  # bytes past the prefix read as 0
    zeros = tf.constant(b"\0" * 10)
    pos = tf.fill(tf.shape(n), tf.constant(2, tf.int64))  # after SOI
    found = tf.zeros(tf.shape(n), tf.bool)
    looking = tf.ones(tf.shape(n), tf.bool)
    for _ in range(MAX_SEGMENTS):
        start = tf.minimum(pos, n)
        head = tf.strings.substr(tf.strings.join([tf.strings.substr(images, start, tf.minimum(n - start, 10)),
                                                  zeros]), 0, 10)
        b = tf.cast(tf.reshape(tf.io.decode_raw(head, tf.uint8), [-1, 10]), tf.int64)
        is_app = tf.logical_and(tf.equal(b[:, 0], 0xFF), tf.logical_and(b[:, 1] >= 0xE0, b[:, 1] <= 0xEF))
        looking = tf.logical_and(looking, is_app)
        hit = tf.logical_and(looking, tf.reduce_all(tf.equal(tf.gather(b, _SIGNATURE_AT, axis=1), _SIGNATURE_BYTES), 1))
        found = tf.logical_or(found, hit)
        looking = tf.logical_and(looking, tf.logical_not(hit))
        pos = tf.where(looking, pos + 2 + tf.maximum(b[:, 2] * 256 + b[:, 3], 2), n)
    return found


def _walk(prefix: tf.Tensor) -> tf.Tensor:
    # bytes stay uint8 and only the few read are widened
    raw = tf.io.decode_raw(prefix, tf.uint8)
    n = tf.size(raw, out_type=tf.int64)

    def at(i):
        i = tf.cast(i, tf.int64)
        value = tf.cast(tf.gather(raw, tf.clip_by_value(i, 0, tf.maximum(n - 1, 0))), tf.int64)
        return tf.where(tf.logical_and(i >= 0, i < n), value, tf.constant(0, tf.int64))

    offsets = tf.constant(_SIGNATURE_AT, tf.int64)
    expected = tf.constant(_SIGNATURE_BYTES, tf.int64)

    pos = tf.constant(2, tf.int64)  # after SOI
    app1 = tf.constant(-1, tf.int64)
    for _ in range(MAX_SEGMENTS):
        # An APPn segment (FF E0..EF) is looked at; anything else (DQT, SOF, SOS...) ends the look.
        is_app = tf.logical_and(tf.equal(at(pos), 0xFF), tf.logical_and(at(pos + 1) >= 0xE0, at(pos + 1) <= 0xEF))
        looking = tf.logical_and(app1 < 0, is_app)
        hit = tf.logical_and(looking, tf.reduce_all(tf.equal(at(pos + offsets), expected)))
        app1 = tf.where(hit, pos, app1)
        length = at(pos + 2) * 256 + at(pos + 3)
        pos = tf.where(looking, pos + 2 + tf.maximum(length, 2), n)
    return tf.cond(app1 >= 0, lambda: _from_tiff(at, app1 + 10), lambda: tf.constant(1, tf.int32))


def _from_tiff(at, base: tf.Tensor) -> tf.Tensor:
    little = tf.logical_and(tf.equal(at(base), 0x49), tf.equal(at(base + 1), 0x49))  # "II"; "MM" is big-endian

    def u(offset, length):
        values = [at(offset + i) for i in range(length)]
        le = sum(v * 256 ** i for i, v in enumerate(values))
        be = sum(v * 256 ** i for i, v in enumerate(reversed(values)))
        return tf.where(little, le, be)

    ifd = base + u(base + 4, 4)
    count = tf.minimum(u(ifd, 2), MAX_ENTRIES)
    entries = ifd + 2 + 12 * tf.range(MAX_ENTRIES, dtype=tf.int64)
    tags, values = u(entries, 2), u(entries + 8, 2)  # a SHORT value sits in the first 2 bytes of its field
    hit = tf.logical_and(tf.equal(tags, ORIENTATION_TAG), tf.range(MAX_ENTRIES, dtype=tf.int64) < count)
    value = tf.reduce_max(tf.where(hit, values, 0))  # at most one such tag; 0 when none
    return tf.cast(tf.where(tf.logical_and(value >= 1, value <= 8), value, 1), tf.int32)


def swaps_axes(o: tf.Tensor) -> tf.Tensor:
    """Orientations 5-8 turn the image by 90 degrees: the stored width is the upright height."""
    return o >= 5


def orient(image: tf.Tensor, o: tf.Tensor) -> tf.Tensor:
    """[h, w, c] as stored -> upright, the transpose Pillow's exif_transpose applies for orientation o."""
    swapped = [1, 0, 2]
    branches = [
        lambda: image,                                                # 1: upright
        lambda: tf.reverse(image, [1]),                               # 2: FLIP_LEFT_RIGHT
        lambda: tf.reverse(image, [0, 1]),                            # 3: ROTATE_180
        lambda: tf.reverse(image, [0]),                               # 4: FLIP_TOP_BOTTOM
        lambda: tf.transpose(image, swapped),                         # 5: TRANSPOSE
        lambda: tf.reverse(tf.transpose(image, swapped), [1]),        # 6: ROTATE_270 (90 degrees clockwise)
        lambda: tf.reverse(tf.transpose(image, swapped), [0, 1]),     # 7: TRANSVERSE
        lambda: tf.reverse(tf.transpose(image, swapped), [0]),        # 8: ROTATE_90 (90 degrees counter-clockwise)
    ]
    return tf.switch_case(tf.clip_by_value(o, 1, 8) - 1, branches)
