"""Graph helpers from the model's output to the served answer: probabilities, top-k, label names."""
from __future__ import annotations

import tensorflow as tf


def to_probabilities(outputs: tf.Tensor, activation: str) -> tf.Tensor:
    """Softmax for a model that ends in logits; a model that ends in softmax is passed through."""
    outputs = tf.cast(outputs, tf.float32)
    return tf.nn.softmax(outputs, axis=-1) if activation == "linear" else outputs


def top_k(probabilities: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(classes int64 [n, k], probabilities float32 [n, k]) sorted by descending probability."""
    values, indices = tf.math.top_k(probabilities, k=k, sorted=True)
    return tf.cast(indices, tf.int64), values


class _LabelsFileInitializer(tf.lookup.TextFileInitializer):
    """TextFileInitializer whose table shares a name derived from the labels' content, not from memory."""

    def __init__(self, labels_file, shared_name: str):
        self._fixed_shared_name = shared_name
        super().__init__(labels_file, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                         value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE)

    @property
    def _shared_name(self):
        return self._fixed_shared_name


def labels_table(labels_file, content_sha256: str) -> tf.lookup.StaticHashTable:
    """class index (line number of the labels file, from 0) -> label. `labels_file` may be a saved_model Asset;
    `content_sha256` is the file's sha256, which names the table.

    The table must be shared, not anonymous: TF Serving's C++ loader runs the SavedModel's init op (which fills
    the table from assets/labels.txt) and the signature in separate Session::Run calls, and an anonymous table
    is a new, empty table in each ("FAILED_PRECONDITION: Table not initialized"; found by tools/validate/capi.py).
    TensorFlow's default shared name embeds the Asset object's memory address, which made two exports of the
    same model differ in saved_model.pb, so the name is derived from the labels' content instead."""
    init = _LabelsFileInitializer(labels_file, f"labels_{content_sha256[:32]}")
    return tf.lookup.StaticHashTable(init, default_value="")
