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


def labels_table(labels_file) -> tf.lookup.StaticHashTable:
    """class index (line number of the labels file, from 0) -> label. `labels_file` may be a saved_model Asset."""
    init = tf.lookup.TextFileInitializer(
        labels_file,
        key_dtype=tf.int64,
        key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        value_dtype=tf.string,
        value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
    )
    # Anonymous: a shared table would be named after the Asset object's memory address, which made two exports
    # of the same model differ in saved_model.pb (and so in their digests).
    return tf.lookup.StaticHashTable(init, default_value="", experimental_is_anonymous=True)
