"""TF Serving's load path (tools/validate/capi.py): the C API's TF_LoadSessionFromSavedModel + TF_SessionRun on
the shared tiny export, its tensors, a missing symbol, and exports that Python's loader accepts but TF
Serving's loader cannot serve (each found by this path, each once shipped by this repository's exporter)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.export.images import jpeg
from tools import digests, paths
from tools.validate import capi, serving, validate
from tools.validate import tfs_formats as tfs
from tools.validate.report import Report

# A test that loads an export through the C API (grappler runs on the first call) is marked with its cost.

LAST, FIRST = paths.LAYOUTS


def images(n=3):
    return [jpeg(50 + 7 * i, 60 + 3 * i, seed=i) for i in range(n)]


def python_answers(version_dir, imgs, signature=paths.SERVING_SIGNATURE):
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures[signature]
    return {k: v.numpy() for k, v in fn(images=tf.constant(imgs)).items()}


# ------------------------------------------------------------------------------------------ tensors

def test_string_tensors_round_trip_short_long_and_empty():
    lib = capi.library()
    # 22 bytes fit TF_TString's inline (small) form, longer ones are heap-allocated (large): both must work.
    values = np.array([b"", b"a", b"x" * 22, b"y" * 23, bytes(range(256)) * 40], dtype=object).reshape(5, 1)
    tensor = capi.to_tensor(lib, values)
    try:
        back = capi.from_tensor(lib, tensor)
    finally:
        lib.TF_DeleteTensor(tensor)
    assert back.shape == (5, 1) and back.tolist() == values.tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_numeric_tensors_round_trip(dtype):
    lib = capi.library()
    value = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    tensor = capi.to_tensor(lib, value)
    try:
        back = capi.from_tensor(lib, tensor)
    finally:
        lib.TF_DeleteTensor(tensor)
    assert back.dtype == value.dtype and np.array_equal(back, value)


def test_a_missing_symbol_is_named():
    symbols = dict(capi.SIGNATURES, TF_NoSuchFunctionInThisWheel=(None, []))
    with pytest.raises(capi.CApiUnavailable, match="has no symbol TF_NoSuchFunctionInThisWheel: the TF Serving "
                                                   "load path cannot be exercised"):
        capi.Library(symbols=symbols)


def test_a_missing_library_is_named(tmp_path):
    with pytest.raises(capi.CApiUnavailable, match="cannot open TensorFlow's C API library"):
        capi.Library(tmp_path / "libtensorflow_cc.so.2")


# ------------------------------------------------------------------------------------------ sessions

@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize("layout", paths.LAYOUTS)
def test_load_and_run_both_signatures_equal_the_python_path(tiny_export, layout):
    imgs = images()
    with capi.SavedModelSession(tiny_export.dirs[layout]) as session:
        assert {"serving_default", "predict"} <= set(session.signature_defs)
        for sig in (paths.SERVING_SIGNATURE, paths.PREDICT_ALIAS):
            got = session.run(sig, {paths.INPUT_KEY: np.array(imgs, dtype=object)})
            want = python_answers(tiny_export.dirs[layout], imgs, sig)
            assert set(got) == set(want) == {"classes", "probabilities", "labels"}
            assert np.array_equal(got["classes"], want["classes"])
            assert np.array_equal(got["labels"], want["labels"])
            assert np.max(np.abs(got["probabilities"] - want["probabilities"])) == 0.0


@pytest.mark.slow(seconds=5)
def test_warmup_records_replay_through_the_session(tiny_export):
    """Every warmup record, as TF Serving replays it at load: the request's tensors by the SignatureDef's names."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = tiny_export.dirs[LAST] / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert records
    with capi.SavedModelSession(tiny_export.dirs[LAST]) as session:
        signatures = tfs.signature_map(session.meta_graph)
        for raw in records:
            request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
            name, inputs = tfs.predict_request_inputs(request, signatures)
            out = session.run(name, inputs)
            assert out["probabilities"].shape[0] == len(inputs[paths.INPUT_KEY])


@pytest.mark.slow(seconds=5)
def test_a_graph_error_comes_back_with_tf_servings_code(tiny_export):
    with capi.SavedModelSession(tiny_export.dirs[LAST]) as session:
        with pytest.raises(capi.CApiError) as err:
            session.run(paths.SERVING_SIGNATURE, {paths.INPUT_KEY: np.array([b"not an image"], dtype=object)})
    assert err.value.code == "INVALID_ARGUMENT" and "image is empty, corrupt or not JPEG" in err.value.message


def test_a_missing_export_fails_to_load_with_the_loaders_message(tmp_path):
    with pytest.raises(capi.CApiError) as err:
        capi.SavedModelSession(tmp_path)
    assert err.value.code in ("NOT_FOUND", "INVALID_ARGUMENT") and str(tmp_path) in err.value.message


# ------------------------------------------------------------------------------------------ loaders disagree

def _rewrite_signature_output(version_dir: Path, output: str, tensor_name: str) -> None:
    from tensorflow.core.protobuf import saved_model_pb2

    pb = version_dir / paths.SAVED_MODEL_PB
    model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    for sig in (paths.SERVING_SIGNATURE, paths.PREDICT_ALIAS):
        model.meta_graphs[0].signature_def[sig].outputs[output].name = tensor_name
    pb.write_bytes(model.SerializeToString())
    digests.write_sums(version_dir)


def _loaders_disagree(version_dir: Path, imgs, error: str) -> Report:
    """Load version_dir once, as validation does (serving.LoadedExport: TF Serving's path through the C API and
    Python's loader beside it), show that Python's loader answers while TF Serving's path fails with `error`,
    and run the serving checks that must catch it on that same load. Returns their report."""
    report = Report(model="tiny", version=1)
    export = serving.LoadedExport(version_dir, LAST, "tiny", 1)
    try:
        inputs = {paths.INPUT_KEY: np.array(imgs, dtype=object)}
        assert export.loaded is not None and export.session is not None
        # Python's loader does not notice: the old validation, which called only it, passed these exports.
        answers = export.run_python(paths.SERVING_SIGNATURE, inputs)
        assert {k: v.shape for k, v in answers.items()} == {k: (len(imgs), 3) for k in serving.OUTPUT_DTYPES}
        with pytest.raises(capi.CApiError, match=error):
            export.session.run(paths.SERVING_SIGNATURE, inputs)
        serving.check_loaders_agree(report, LAST, export, imgs)
        serving.check_request_formats(report, LAST, export, imgs)
        serving.check_warmup(report, LAST, export)
    finally:
        export.close()
    return report


@pytest.mark.slow(seconds=10)
def test_signature_def_naming_a_missing_tensor_python_serves_tf_serving_cannot(tiny_export, tmp_path):
    """Python's loader answers from the tf.functions it rebuilds and never reads the SignatureDef's tensor names;
    TF Serving runs exactly those names. A SignatureDef that names a tensor the graph lacks is fine for one and
    fatal for the other."""
    target = tmp_path / "tiny" / LAST / "1"
    shutil.copytree(tiny_export.dirs[LAST], target)
    _rewrite_signature_output(target, "labels", "no_such_op:0")
    report = _loaders_disagree(target, images(2), "tensor no_such_op:0 named by the SignatureDef is not in the graph")
    agree = [c for c in report.checks if c.name == "serving.loaders_agree"][0]
    assert agree.status == "failed" and "TF Serving's path answers NOT_FOUND" in agree.detail
    assert "Python's loader normally" in agree.detail and not report.passed


def _export_with(tiny_export, tmp_path, monkeypatch, patch) -> Path:
    from export.api import export_model

    patch(monkeypatch)
    out = tmp_path / "models"
    dirs = export_model(tiny_export.config, version=1, output_dir=out, verbose=False, layouts=(LAST,))
    monkeypatch.undo()
    return dirs[LAST]


def _anonymous_labels_table(monkeypatch):
    import tensorflow as tf

    from export import postprocess

    def anonymous(labels_file, content_sha256):
        init = tf.lookup.TextFileInitializer(labels_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                                             tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
        return tf.lookup.StaticHashTable(init, default_value="", experimental_is_anonymous=True)

    monkeypatch.setattr(postprocess, "labels_table", anonymous)


def _untracked_keras_variables(monkeypatch):
    from export import servable

    original = servable.Servable.__init__

    def init(self, model, **kwargs):
        original(self, model, **kwargs)
        self.model_variables = {}  # the Keras 3 model alone, as a plain tf.Module holding it tracks it
        self._keras_tracked = model

    monkeypatch.setattr(servable.Servable, "__init__", init)


@pytest.mark.slow(seconds=35)
@pytest.mark.parametrize("patch, message", [
    # export/postprocess.py: an anonymous table is created anew, empty, by every Session::Run.
    (_anonymous_labels_table, "Table not initialized"),
    # export/servable.py: Keras 3 wrappers saved instead of the variables the signature reads.
    (_untracked_keras_variables, "Could not find variable"),
], ids=["anonymous-labels-table", "untracked-keras-variables"])
def test_exports_python_serves_but_tf_serving_cannot_fail_validation(tiny_export, tmp_path, monkeypatch, patch,
                                                                     message):
    """The serving checks of validation (tools/validate/serving.py) on the export, loaded once as validation
    loads it; that the runner calls them: test_good_export_passes_every_check_and_writes_the_report_contract."""
    version_dir = _export_with(tiny_export, tmp_path, monkeypatch, patch)
    report = _loaders_disagree(version_dir, images(2), message)
    failed = {c.name for c in report.failures()}
    assert {"serving.loaders_agree", "serving.request_formats", "serving.warmup"} <= failed
    assert message in [c for c in report.checks if c.name == "serving.request_formats"][0].detail


@pytest.mark.slow(seconds=20)
def test_validation_without_the_c_api_is_not_run_and_names_why(tiny_export, tmp_path, monkeypatch):
    def unavailable():
        raise capi.CApiUnavailable("TensorFlow's C API library libtensorflow_cc.so.2 has no symbol "
                                   "TF_LoadSessionFromSavedModel: simulated")

    monkeypatch.setattr(capi, "library", unavailable)
    # channels_last alone: the loader is chosen once per export, the same way for both layouts.
    report = validate(tiny_export.config, paths_=[tiny_export.dirs[LAST]], reports_dir=tmp_path / "r")
    load = [c for c in report.checks if c.name == "serving.load" and c.layout == LAST][0]
    assert load.status == "not_run" and "has no symbol TF_LoadSessionFromSavedModel" in load.detail
    assert load.figures["loader"] == serving.PYTHON_LOADER
    assert not report.failures() and not report.passed
    assert report.machine["loader"].startswith("Python's tf.saved_model.load only")


# ------------------------------------------------------------------------------------------ oneDNN and NCHW

_RUN_NCHW = """
import json, sys
from tools import onednn
onednn.prepare()
import numpy as np
from tools.validate import capi
from tests.export.images import jpeg
imgs = np.array([jpeg(50, 60, seed=1), jpeg(64, 40, seed=2)], dtype=object)
out = {"onednn": onednn.state()}
for layout, path in json.loads(sys.argv[1]).items():
    try:
        with capi.SavedModelSession(path) as s:
            out[layout] = s.run("serving_default", {"images": imgs})["probabilities"].tolist()
    except capi.CApiError as exc:
        out[layout] = exc.code + ": " + exc.message.splitlines()[0]
    # The way validation loads it: channels_first through grappler's CPU layout conversion, in both loaders.
    from tools.validate import serving
    export = serving.LoadedExport(path, layout, "tiny", 1)
    out[layout + "/validation"] = {
        "converted": export.nchw_to_nhwc,
        "capi": export.run("serving_default", {"images": imgs})["probabilities"].tolist(),
        "python": export.run_python("serving_default", {"images": imgs})["probabilities"].tolist()}
    export.close()
print(json.dumps(out))
"""


def _run_nchw(tiny_export, env_value):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_ENABLE_ONEDNN_OPTS", "_TFSG_"))}
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    dirs = json.dumps({lay: str(p) for lay, p in tiny_export.dirs.items()})
    done = subprocess.run([sys.executable, "-c", _RUN_NCHW, dirs], cwd=paths.REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _close(a, b, atol=5e-5):
    return float(np.max(np.abs(np.array(a) - np.array(b)))) <= atol


@pytest.mark.slow(seconds=60)
def test_the_nchw_graph_runs_natively_with_onednn_and_converted_by_validation(tiny_export):
    """With TF_ENABLE_ONEDNN_OPTS unset, tools.onednn.prepare() sets it to 1 whatever the CPU, and a plain C API
    session runs the channels_first graph as NCHW (oneDNN's kernels) and agrees with channels_last. With oneDNN off
    the very same plain session cannot run it: what ran was the NCHW graph, not a fallback.

    Validation's LoadedExport runs channels_first through grappler's CPU layout conversion in both loaders
    (tools/validate/nchw_on_cpu.py): it runs with oneDNN off too, which proves the conversion reaches the C API
    session's ConfigProto and Python's function calls alike, and it agrees with channels_last either way."""
    on = _run_nchw(tiny_export, None)
    assert on["onednn"]["variable"] == "TF_ENABLE_ONEDNN_OPTS=1" and on["onednn"]["enabled"] is True
    assert on["onednn"]["source"].startswith("set to 1 by tf-serving-gitops")
    assert _close(on[FIRST], on[LAST])

    off = _run_nchw(tiny_export, "0")
    assert off["onednn"]["enabled"] is False and off["onednn"]["source"] == "set in the environment"
    assert isinstance(off[LAST], list)  # NHWC runs with the stock kernels
    assert off[FIRST].startswith(("UNIMPLEMENTED", "INVALID_ARGUMENT")) and "NHWC" in off[FIRST]

    for run in (on, off):
        first, last = run[FIRST + "/validation"], run[LAST + "/validation"]
        assert first["converted"] is True and last["converted"] is False
        assert first["capi"] == first["python"] and last["capi"] == last["python"]
        assert _close(first["capi"], last["capi"])
        assert last["capi"] == run[LAST]  # channels_last: the same session as a plain one
