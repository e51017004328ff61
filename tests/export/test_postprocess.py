"""Eager-mode unit tests of top-k, probabilities and the labels table."""
import numpy as np
import tensorflow as tf

from export import postprocess


def test_top_k_is_sorted_descending_with_int64_classes():
    probs = tf.constant([[0.1, 0.5, 0.15, 0.25], [0.7, 0.1, 0.1, 0.1]])
    classes, values = postprocess.top_k(probs, 3)
    assert classes.dtype == tf.int64
    assert classes.numpy()[0].tolist() == [1, 3, 2]
    assert classes.numpy()[1, 0] == 0  # the rest of that row is a tie
    assert np.all(np.diff(values.numpy(), axis=1) <= 0)


def test_to_probabilities_applies_softmax_only_to_logits():
    logits = tf.constant([[2.0, 1.0, 0.0]])
    probs = postprocess.to_probabilities(logits, "linear").numpy()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    assert probs.argmax() == 0
    already = tf.constant([[0.2, 0.8]])
    np.testing.assert_array_equal(postprocess.to_probabilities(already, "softmax").numpy(), already.numpy())


def test_labels_table_maps_line_numbers_to_names(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("cat\ndog\ngreat white shark\n")
    table = postprocess.labels_table(str(f), "0" * 64)
    out = table.lookup(tf.constant([[2, 0], [1, 7]], tf.int64)).numpy()
    assert out.tolist() == [[b"great white shark", b"cat"], [b"dog", b""]]
