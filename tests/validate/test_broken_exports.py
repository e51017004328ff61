"""The validator against broken exports: each a copy of the shared tiny export (tests/conftest.py), broken on
purpose; each must fail with its own line naming the problem. (A file of its own so that `make test`'s workers
share the validator's tests.)"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import pytest
import yaml

from tools import digests, paths
from tools.config import parse_config
from tools.validate import serving
from tests.validate.helpers import FIRST, LAST, check, config_data, failed, run, vdir

# Nearly every test here runs a whole validation (two loaders per layout, the corpus): seconds each.
pytestmark = pytest.mark.slow(seconds=20)


# ------------------------------------------------------------------------------------------ broken exports

def test_missing_directory(tiny_export, tmp_path):
    missing = tmp_path / "nowhere" / "tiny" / LAST / "1"
    report = run(tiny_export, tmp_path, paths_=[missing])
    assert f"{missing} does not exist" in failed(report, "structure.version_dir")
    assert [c.name for c in report.checks] == ["structure.version_dir"]


def test_missing_version_of_a_layout_a_target_serves(tiny_export, tmp_path, models):
    shutil.rmtree(vdir(models, tiny_export, FIRST))
    report = run(tiny_export, tmp_path, version=1, models_dir=models)
    assert "channels_first/1 does not exist" in failed(report, "structure.version_dir", FIRST)
    assert check(report, "structure.digest", LAST).passed


@pytest.mark.parametrize("name", ["latest", "01"])
def test_non_integer_version_directory(tiny_export, tmp_path, models, name):
    bad = vdir(models, tiny_export, LAST, name)
    os.rename(vdir(models, tiny_export), bad)
    report = run(tiny_export, tmp_path, paths_=[bad])
    assert f"'{name}' is not a version" in failed(report, "structure.version_dir")
    assert report.version is None and not (tmp_path / "reports").exists()  # no version, no report file


def test_stray_and_temporary_directories_beside_the_version(tiny_export, tmp_path, models):
    (vdir(models, tiny_export).parent / "latest").mkdir()
    (vdir(models, tiny_export).parent / ".tmp-2-abcd").mkdir()
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    detail = failed(report, "structure.layout_dir")
    assert "'latest'" in detail and "is not a version" in detail
    assert "leftover temporary export .tmp-2-abcd" in detail


def test_half_written_export_without_variables(tiny_export, tmp_path, models):
    shutil.rmtree(vdir(models, tiny_export) / paths.VARIABLES_DIR)
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    assert "missing variables/" in failed(report, "structure.files")
    assert "half-written" in failed(report, "structure.files")
    assert "variables/variables.index is listed in SHA256SUMS but missing" in failed(report, "structure.digest")
    assert "not attempted" in failed(report, "serving.load")


def test_tampered_file(tiny_export, tmp_path, models):
    labels = vdir(models, tiny_export) / paths.ASSETS_DIR / paths.LABELS_FILE
    labels.write_bytes(labels.read_bytes().replace(b"red", b"rot"))
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    assert failed(report, "structure.digest") == \
        "assets/labels.txt does not match its sha256 in SHA256SUMS (tampered or corrupt)"
    assert check(report, "serving.request_formats").passed  # the rest still runs and says what it sees


def test_wrong_signature(tiny_export, tmp_path, models):
    import tensorflow as tf

    target = vdir(models, tiny_export)
    keep = tmp_path / "keep"
    shutil.copytree(target, keep)
    shutil.rmtree(target)

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * 2.0}

    module = Other()
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    for rel in (paths.ASSETS_DIR, paths.ASSETS_EXTRA_DIR):
        shutil.copytree(keep / rel, target / rel, dirs_exist_ok=True)
    digests.write_sums(target)
    report = run(tiny_export, tmp_path, paths_=[target])
    detail = failed(report, "serving.signatures")
    assert "serving_default: input 'x' float32 [None, 4]; expected 'images' string [None] (encoded images)" in detail
    assert "signature 'predict' is missing" in detail
    assert "serving_default: no output 'classes'" in detail
    assert "not the serving contract" in failed(report, "serving.calls")
    assert check(report, "structure.digest").passed


def test_symlinked_version(tiny_export, tmp_path, models):
    link = vdir(models, tiny_export, LAST, 2)
    link.symlink_to(vdir(models, tiny_export))
    report = run(tiny_export, tmp_path, paths_=[link])
    assert f"{link} is a symlink to {vdir(models, tiny_export)}" in failed(report, "structure.version_dir")
    assert "version is 1 but its directory says 2" in failed(report, "structure.export_info")


def test_symlink_escaping_the_export(tiny_export, tmp_path, models):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model\n")
    (vdir(models, tiny_export) / paths.ASSETS_EXTRA_DIR / "notes.txt").symlink_to(outside)
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    assert f"symlinks escaping the export: assets.extra/notes.txt -> {outside}" in failed(report, "structure.symlinks")
    assert "assets.extra/notes.txt is not listed in SHA256SUMS" in failed(report, "structure.digest")


def test_nchw_graph_where_a_cpu_target_would_serve_it(tiny_export, tmp_path, models):
    """A channels_first export copied into the channels_last place: the CPU layout guard stops it."""
    target = vdir(models, tiny_export)
    shutil.rmtree(target)
    shutil.copytree(vdir(models, tiny_export, FIRST), target)
    report = run(tiny_export, tmp_path, paths_=[target])
    assert ("NCHW Conv2D x4 in a channels_last export served by CPU target cpu: the CPU serving image cannot "
            "run them") in failed(report, "graph.layout")
    assert "layout is 'channels_first' but its directory says 'channels_last'" in failed(report, "structure.export_info")


def test_saved_model_newer_than_the_serving_image(tiny_export, tmp_path, models):
    data = yaml.safe_load(yaml.safe_dump(config_data(tiny_export)))
    data["targets"]["cpu"]["image"]["tag"] = "2.19.0"
    config = parse_config(data)
    report = run(tiny_export, tmp_path, config=config, paths_=[vdir(models, tiny_export)])
    assert "written by TensorFlow 2.20.0, newer than TF Serving 2.19.0 of target cpu" in \
        failed(report, "graph.tensorflow_version")
    assert "older than the installed TensorFlow" in failed(report, "graph.ops")


def test_parity_uses_the_exports_own_source_not_model_yaml(tiny_export, tmp_path, models):
    """model.yaml naming another model file changes nothing: the reference is the file the export records,
    found by its sha256 in the source cache (build/sources of the repository model.yaml is in)."""
    from tests.conftest import tiny_resnet

    other = tmp_path / "other.keras"
    tiny_resnet(seed=8).save(other)
    config = replace(tiny_export.config, model=replace(tiny_export.config.model, source=replace(
        tiny_export.config.model.source, model_file=other)))
    report = run(tiny_export, tmp_path, config=config, version=1, models_dir=tiny_export.root)
    parity = check(report, "correctness.parity")
    assert parity.passed, parity.detail
    assert parity.figures["reference"].startswith("model file ") and "sources/sha256-" in parity.figures["reference"]
    info = check(report, "structure.export_info")
    assert info.passed and "made from model file tiny.keras; model.yaml names other.keras" in info.detail


def test_parity_without_the_source_at_hand_is_not_run_and_names_where_it_looked(tiny_export, tmp_path, models):
    from tests.conftest import tiny_resnet

    other = tmp_path / "other.keras"
    tiny_resnet(seed=8).save(other)
    # model.yaml in an empty folder: no build/sources beside it.
    config = replace(tiny_export.config, path=tmp_path / "model.yaml", model=replace(
        tiny_export.config.model, source=replace(tiny_export.config.model.source, model_file=other)))
    report = run(tiny_export, tmp_path, config=config, version=1, models_dir=models)
    parity = check(report, "correctness.parity")
    assert parity.status == "not_run" and not report.passed and not report.failures()
    assert "the source model file tiny.keras (sha256 " in parity.detail and "is not at hand" in parity.detail
    assert "other.keras (sha256 " in parity.detail and "give it with --source FILE" in parity.detail
    # Given by hand, it is used (and accepted only by its sha256).
    report = run(tiny_export, tmp_path, config=config, version=1, models_dir=models,
                 source_file=tiny_export.model_file)
    assert check(report, "correctness.parity").passed and report.passed


def test_parity_fails_when_the_source_holds_other_weights(tiny_export, tmp_path, models):
    """An export whose record names a file with other weights than the graph holds: parity catches it."""
    from tests.conftest import tiny_resnet

    other = tmp_path / "other.keras"
    tiny_resnet(seed=8).save(other)
    target = vdir(models, tiny_export)
    info_path = target / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE
    info = json.loads(info_path.read_text())
    info["source"].update(file="other.keras", file_sha256=digests.sha256_file(other))
    info_path.write_text(json.dumps(info))
    digests.write_sums(target)
    config = replace(tiny_export.config, model=replace(tiny_export.config.model, source=replace(
        tiny_export.config.model.source, model_file=other)))
    report = run(tiny_export, tmp_path, config=config, paths_=[target])
    detail = failed(report, "correctness.parity")
    assert "weights differ: the export records weights sha256" in detail and "servable vs Keras" in detail


def test_invalid_warmup_records(tiny_export, tmp_path, models):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from tools.validate import tfs_formats as tfs

    wrong_key = tfs.make_predict_request("tiny", {"image": [b"x"]})
    classify = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog())
    path = vdir(models, tiny_export) / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=wrong_key)).SerializeToString())
        w.write(classify.SerializeToString())
    digests.write_sums(vdir(models, tiny_export))
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    detail = failed(report, "serving.warmup")
    assert "record 0: INVALID_ARGUMENT: Signature input alias: images(feed name: serving_default_images:0) " \
           "not found in request" in detail
    assert "record 1 is a classify_log; this servable answers Predict only" in detail
