"""Round trip of the shared tiny export: files, digests, signature, and the same answers as Keras."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import preprocess
from export.warmup import read_warmup
from tests.conftest import TINY_LABELS, TINY_SIZE
from tests.export import images
from tests.export.graph_ops import conv_formats, saved_model_nodes
from tools import digests, paths

SAMPLES = [images.jpeg(60, 80, seed=1), images.png(33, 21, seed=2), images.jpeg(200, 150, seed=3)]


@pytest.fixture(scope="module")
def loaded(tiny_export):
    return {layout: tf.saved_model.load(str(d)) for layout, d in tiny_export.dirs.items()}


def test_every_file_of_the_contract_is_there(tiny_export):
    for layout, d in tiny_export.dirs.items():
        assert d == tiny_export.root / "tiny" / layout / "1"
        for rel in [paths.SAVED_MODEL_PB, paths.VARIABLES_DIR, f"{paths.ASSETS_DIR}/{paths.LABELS_FILE}",
                    f"{paths.ASSETS_EXTRA_DIR}/{paths.WARMUP_FILE}", f"{paths.ASSETS_EXTRA_DIR}/{paths.EXPORT_INFO_FILE}",
                    paths.DIGEST_FILE]:
            assert (d / rel).exists(), rel
        assert (d / paths.ASSETS_DIR / paths.LABELS_FILE).read_text().splitlines() == TINY_LABELS
        assert not list(d.parent.glob(paths.TMP_PREFIX + "*"))


def test_digest_file_covers_every_file_and_verifies(tiny_export):
    for d in tiny_export.dirs.values():
        assert digests.verify(d) == []
        listed = set(digests.parse_sums((d / paths.DIGEST_FILE).read_text()))
        assert listed == set(digests.list_files(d))
        assert digests.version_digest(d).startswith("sha256:")


def test_names_are_canonical_and_the_fingerprint_describes_the_saved_model_as_written(tiny_export):
    """export/canonical.py renamed the functions by their tracing order (suffixes 1..n, not the process's counter),
    and fingerprint.pb is TensorFlow's own fingerprint of that saved_model.pb, only its uuid derived."""
    import re

    from tensorflow.core.protobuf import fingerprint_pb2, saved_model_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    for d in tiny_export.dirs.values():
        saved = saved_model_pb2.SavedModel.FromString((d / paths.SAVED_MODEL_PB).read_bytes())
        library = saved.meta_graphs[0].graph_def.library
        names = [f.signature.name for f in library.function]
        numeric_args = {a.s for f in library.function for attrs in f.arg_attr.values()
                        for key, a in attrs.attr.items() if key == "_user_specified_name" and a.s.isdigit()}
        suffixes = [int(re.search(r"_(\d+)$", n).group(1)) for n in names]
        # ranks among the export's own counter values: functions and numeric argument names, 1..n together
        assert names == sorted(names) and len(set(suffixes)) == len(suffixes)
        assert set(suffixes) | {int(a) for a in numeric_args} == set(range(1, len(names) + len(numeric_args) + 1))
        written = fingerprint_pb2.FingerprintDef.FromString((d / "fingerprint.pb").read_bytes())
        fresh = fingerprint_pb2.FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(str(d)))
        assert written.saved_model_checksum == fresh.saved_model_checksum != 0
        assert written.graph_def_program_hash == fresh.graph_def_program_hash
        assert written.uuid and written.uuid != fresh.uuid  # derived, not random


def test_export_info_records_versions_layout_weights_and_signature(tiny_export):
    infos = {lay: json.loads((d / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
             for lay, d in tiny_export.dirs.items()}
    for layout, info in infos.items():
        assert info["layout"] == layout and info["version"] == 1 and info["model_name"] == "tiny"
        assert info["tensorflow_version"] == tf.__version__ and info["keras_version"] == keras.__version__
        assert info["input_size"] == list(TINY_SIZE) and info["num_classes"] == 4 and info["top_k"] == 3
        assert info["source"]["kind"] == "model_file" and len(info["source"]["file_sha256"]) == 64
        assert set(info["signatures"]) == {"serving_default", "predict"}
        assert info["warmup_batch_sizes"] == [1, 2, 4]
        assert info["fold_batch_norms"] is True and info["batch_norms_folded"] == 2  # the tiny model has two
    assert infos["channels_last"]["source"]["weights_sha256"] == infos["channels_first"]["source"]["weights_sha256"]


def test_signatures_follow_the_contract(loaded):
    for model in loaded.values():
        assert set(model.signatures) == {"serving_default", "predict"}
        fn = model.signatures["serving_default"]
        spec = fn.structured_input_signature[1]["images"]
        assert spec.dtype == tf.string and spec.shape.as_list() == [None]
        outs = fn.structured_outputs
        assert outs["classes"].dtype == tf.int64 and outs["probabilities"].dtype == tf.float32
        assert outs["labels"].dtype == tf.string
        assert outs["probabilities"].shape.as_list() == [None, 3]


def test_servable_answers_like_the_keras_model_on_the_same_pixels(tiny_export, loaded):
    keras_model = keras.models.load_model(tiny_export.model_file, compile=False)
    pixels = preprocess.decode_batch(tf.constant(SAMPLES), TINY_SIZE, 40_000_000)
    expected = keras_model(pixels).numpy()
    for layout, model in loaded.items():
        out = model.signatures["serving_default"](images=tf.constant(SAMPLES))
        classes, probs = out["classes"].numpy(), out["probabilities"].numpy()
        np.testing.assert_allclose(probs, np.take_along_axis(expected, classes, 1), atol=1e-5, err_msg=layout)
        assert classes[:, 0].tolist() == expected.argmax(1).tolist()
        assert np.all(np.diff(probs, axis=1) <= 0)
        labels = out["labels"].numpy().astype(str)
        assert labels.tolist() == [[TINY_LABELS[c] for c in row] for row in classes]


def test_predict_alias_answers_like_serving_default(loaded):
    model = loaded["channels_last"]
    a = model.signatures["serving_default"](images=tf.constant(SAMPLES))
    b = model.signatures["predict"](images=tf.constant(SAMPLES))
    np.testing.assert_array_equal(a["probabilities"].numpy(), b["probabilities"].numpy())


def test_channels_first_export_runs_nchw_convolutions_and_channels_last_does_not(tiny_export, loaded):
    first = conv_formats(saved_model_nodes(tiny_export.dirs["channels_first"]))
    last = conv_formats(saved_model_nodes(tiny_export.dirs["channels_last"]))
    assert set(first) == {"NCHW"} and first["NCHW"] >= 2
    assert set(last) == {"NHWC"}


def test_the_served_graph_has_its_batch_norms_folded_into_the_convolutions(tiny_export):
    # Keras 3 writes an inference batch norm as Rsqrt, Mul and AddV2 over variables (export/fold.py): none left.
    for d in tiny_export.dirs.values():
        ops = [node.op for node in saved_model_nodes(d)]
        assert "Rsqrt" not in ops and ops.count("BiasAdd") >= 2


def test_layouts_give_the_same_predictions(loaded):
    outs = {lay: m.signatures["serving_default"](images=tf.constant(SAMPLES)) for lay, m in loaded.items()}
    np.testing.assert_array_equal(outs["channels_last"]["classes"].numpy(), outs["channels_first"]["classes"].numpy())
    np.testing.assert_allclose(outs["channels_last"]["probabilities"].numpy(),
                               outs["channels_first"]["probabilities"].numpy(), atol=1e-5)


def test_warmup_records_are_predict_logs_for_every_batch_size(tiny_export, loaded):
    for layout, d in tiny_export.dirs.items():
        logs = read_warmup(d / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE)
        sizes = []
        for log in logs:
            request = log.predict_log.request
            assert request.model_spec.name == "tiny"
            assert request.model_spec.signature_name == "serving_default"
            batch = tf.make_ndarray(request.inputs["images"])
            sizes.append(len(batch))
            out = loaded[layout].signatures["serving_default"](images=tf.constant(batch))
            assert out["classes"].shape == (len(batch), 3)
        assert sizes == [1, 2, 4, 1]


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty, corrupt or not JPEG"),
        (b"not an image at all", "empty, corrupt or not JPEG"),
        (images.with_jpeg_size(images.jpeg(), 50000, 50000), "image declares"),
        (images.jpeg(100, 100)[:300], "JPEG"),
    ],
    ids=["empty", "text", "oversized", "truncated"],
)
def test_bad_images_fail_the_request_with_invalid_argument(loaded, data, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded["channels_last"].signatures["serving_default"](images=tf.constant([images.jpeg(), data]))


def test_an_empty_batch_gets_an_empty_answer(loaded):
    out = loaded["channels_last"].signatures["serving_default"](images=tf.constant([], tf.string))
    assert out["classes"].shape == (0, 3) and out["labels"].shape == (0, 3)
