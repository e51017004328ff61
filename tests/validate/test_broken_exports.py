"""The validator against broken exports: each a copy of the shared tiny export (tests/conftest.py), broken on
purpose; each must fail with its own line naming the problem. (A file of its own so that `make test`'s workers
share the validator's tests.)

A whole validation costs tens of seconds, so each test here does the least that still runs the real check
code: a check that is plain file-system or graph work is called on the broken copy with a Report
(tools/validate/structure.py, ops.py, serving.py); a broken export that must be validated whole is validated
once, and the tests about its several broken aspects (chosen so that none can hide another) share that run.
The runner's wiring of every check is shown end to end on the good export and by the whole validations here."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from tools import digests, paths
from tools.config import parse_config
from tools.validate import ops, structure
from tools.validate import tfs_formats as tfs
from tools.validate.report import ExportResult, Report
from tests.validate.helpers import FIRST, LAST, check, config_data, copy_models, failed, run, vdir


def report_of(**kwargs) -> Report:
    return Report(model="tiny", version=1, **kwargs)


# ------------------------------------------------------------------------------------------ validated whole

def test_missing_directory(tiny_export, tmp_path):
    missing = tmp_path / "nowhere" / "tiny" / LAST / "1"
    report = run(tiny_export, tmp_path, paths_=[missing])
    assert f"{missing} does not exist" in failed(report, "structure.version_dir")
    assert [c.name for c in report.checks] == ["structure.version_dir"]


def test_missing_version_of_a_layout_a_target_serves(tiny_export, tmp_path, models):
    """The runner validates every layout a target serves, the missing one included. channels_last is made
    unloadable but kept consistent with its SHA256SUMS, so that its checks stop before the costly load and its
    passing digest still shows it was validated beside the missing layout."""
    shutil.rmtree(vdir(models, tiny_export, FIRST))
    shutil.rmtree(vdir(models, tiny_export) / paths.VARIABLES_DIR)
    digests.write_sums(vdir(models, tiny_export))
    report = run(tiny_export, tmp_path, version=1, models_dir=models)
    assert "channels_first/1 does not exist" in failed(report, "structure.version_dir", FIRST)
    assert check(report, "structure.digest", LAST).passed


@pytest.mark.parametrize("name", ["latest", "01"])
def test_non_integer_version_directory(tiny_export, tmp_path, models, name):
    """Without variables/ the validation stops before loading; what it says of the directory's name, and that
    it writes no report for a directory that names no version, does not depend on that (a failing version
    does write its report: test_a_failing_version_writes_a_report_that_says_so)."""
    bad = vdir(models, tiny_export, LAST, name)
    os.rename(vdir(models, tiny_export), bad)
    shutil.rmtree(bad / paths.VARIABLES_DIR)
    report = run(tiny_export, tmp_path, paths_=[bad])
    assert f"'{name}' is not a version" in failed(report, "structure.version_dir")
    assert report.version is None and not (tmp_path / "reports").exists()  # no version, no report file


def test_half_written_export_without_variables(tiny_export, tmp_path, models):
    shutil.rmtree(vdir(models, tiny_export) / paths.VARIABLES_DIR)
    report = run(tiny_export, tmp_path, paths_=[vdir(models, tiny_export)])
    assert "missing variables/" in failed(report, "structure.files")
    assert "half-written" in failed(report, "structure.files")
    assert "variables/variables.index is listed in SHA256SUMS but missing" in failed(report, "structure.digest")
    assert "not attempted" in failed(report, "serving.load")


def _write_invalid_warmup(version_dir: Path) -> None:
    """Two warmup records TF Serving refuses: a Predict request with the wrong input key, and a classify_log."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    wrong_key = tfs.make_predict_request("tiny", {"image": [b"x"]})
    classify = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog())
    with tf.io.TFRecordWriter(str(version_dir / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE)) as w:
        w.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=wrong_key)).SerializeToString())
        w.write(classify.SerializeToString())


@dataclass
class Validated:
    report: Report
    reports_dir: Path
    version_dir: Path


@pytest.fixture(scope="module")
def tampered(tiny_export, tmp_path_factory) -> Validated:
    """ONE whole validation (the version directory given as a path) of channels_last broken three ways that
    cannot hide one another: invalid warmup records (SHA256SUMS rewritten for them, so only serving.warmup sees
    them), then assets/labels.txt tampered after SHA256SUMS was written (structure.digest), and a stray and a
    temporary directory beside the version (structure.layout_dir). The warmup check and the calls read the
    labels through the graph, whose answers stay well-formed with the tampered names."""
    tmp = tmp_path_factory.mktemp("tampered")
    models = copy_models(tiny_export, tmp / "models")
    target = vdir(models, tiny_export)
    _write_invalid_warmup(target)
    digests.write_sums(target)
    labels = target / paths.ASSETS_DIR / paths.LABELS_FILE
    labels.write_bytes(labels.read_bytes().replace(b"red", b"rot"))
    (target.parent / "latest").mkdir()
    (target.parent / ".tmp-2-abcd").mkdir()
    report = run(tiny_export, tmp, paths_=[target])
    return Validated(report=report, reports_dir=tmp / "reports", version_dir=target)


@pytest.mark.slow(seconds=30)  # builds `tampered`, which the tests below share
def test_tampered_file(tampered):
    report = tampered.report
    assert failed(report, "structure.digest") == \
        "assets/labels.txt does not match its sha256 in SHA256SUMS (tampered or corrupt)"
    assert check(report, "serving.request_formats").passed  # the rest still runs and says what it sees


def test_a_failing_version_writes_a_report_that_says_so(tampered):
    report = tampered.report
    data = json.loads(paths.validation_report(tampered.reports_dir, "tiny", 1, "json").read_text())
    assert data["passed"] is False and data["exports"][LAST]["passed"] is False
    assert report.to_markdown().splitlines()[0].endswith(
        f"✗ failed ({len(report.checks)} checks: {len(report.checks) - len(report.failures())} passed, "
        f"{len(report.failures())} failed)")


def test_stray_and_temporary_directories_beside_the_version(tampered):
    detail = failed(tampered.report, "structure.layout_dir")
    assert "'latest'" in detail and "is not a version" in detail
    assert "leftover temporary export .tmp-2-abcd" in detail


def test_invalid_warmup_records(tampered):
    detail = failed(tampered.report, "serving.warmup")
    assert "record 0: INVALID_ARGUMENT: Signature input alias: images(feed name: serving_default_images:0) " \
           "not found in request" in detail
    assert "record 1 is a classify_log; this servable answers Predict only" in detail


def test_wrong_signature(tiny_export, tmp_path, models):
    """Validated whole: the runner stops its calls at the signatures, so this costs the loads only (~1 s)."""
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


# ------------------------------------------------------------------------------------------ one check each
# The runner calls these checks on every version directory (tools/validate/runner.py _validate_layout): the good
# export's lines and the whole validations above show that wiring.

def test_symlinked_version(tiny_export, models):
    link = vdir(models, tiny_export, LAST, 2)
    link.symlink_to(vdir(models, tiny_export))
    version = structure.parse_version(link.name)  # as the runner reads it for a path
    assert version == 2
    report = report_of()
    assert structure.check_version_dir(report, LAST, link, version)
    structure.check_export_info(report, LAST, link, tiny_export.config, version)
    assert f"{link} is a symlink to {vdir(models, tiny_export)}" in failed(report, "structure.version_dir")
    assert "version is 1 but its directory says 2" in failed(report, "structure.export_info")


def test_symlink_escaping_the_export(tiny_export, tmp_path, models):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model\n")
    target = vdir(models, tiny_export)
    (target / paths.ASSETS_EXTRA_DIR / "notes.txt").symlink_to(outside)
    report = report_of()
    structure.check_symlinks(report, LAST, target)
    structure.check_digest(report, LAST, target, tiny_export.config, 1)
    assert f"symlinks escaping the export: assets.extra/notes.txt -> {outside}" in failed(report, "structure.symlinks")
    assert "assets.extra/notes.txt is not listed in SHA256SUMS" in failed(report, "structure.digest")


def test_nchw_graph_where_a_cpu_target_would_serve_it(tiny_export, models):
    """A channels_first export copied into the channels_last place: the CPU layout guard stops it."""
    target = vdir(models, tiny_export)
    shutil.rmtree(target)
    shutil.copytree(vdir(models, tiny_export, FIRST), target)
    report = report_of()
    ops.check_layout_guard(report, LAST, tfs.read_meta_graph(target), tiny_export.config)
    structure.check_export_info(report, LAST, target, tiny_export.config, 1)
    assert ("NCHW Conv2D x4 in a channels_last export served by CPU target cpu: the CPU serving image cannot "
            "run them") in failed(report, "graph.layout")
    assert "layout is 'channels_first' but its directory says 'channels_last'" in failed(report, "structure.export_info")


def test_saved_model_newer_than_the_serving_image(tiny_export):
    data = yaml.safe_load(yaml.safe_dump(config_data(tiny_export)))
    data["targets"]["cpu"]["image"]["tag"] = "2.19.0"
    config = parse_config(data)
    meta = tfs.read_meta_graph(tiny_export.dirs[LAST])  # an export nobody changed: the serving image is older
    report = report_of()
    ops.check_tensorflow_version(report, LAST, meta, config)
    ops.check_ops(report, LAST, meta, config)
    assert "written by TensorFlow 2.20.0, newer than TF Serving 2.19.0 of target cpu" in \
        failed(report, "graph.tensorflow_version")
    assert "older than the installed TensorFlow" in failed(report, "graph.ops")


# ------------------------------------------------------------------------------------------ parity's reference
# Where the reference comes from does not depend on the layout or on the other checks: the parity step of the
# runner (tools/validate/runner.py check_parity) on channels_last, loaded and answered once, as a validation
# loads and answers it. That the runner calls it for both layouts: the good export's report.

@dataclass
class Answered:
    info: dict
    samples: list
    answers: object
    labels: list


@pytest.fixture(scope="module")
def answered(tiny_export) -> Answered:
    from tools.validate import correctness, serving
    from tools.validate.samples import correctness_samples

    path = tiny_export.dirs[LAST]
    info = structure.read_export_info(path)
    export = serving.LoadedExport(path, LAST, tiny_export.name, 1)
    try:
        samples = correctness_samples(tuple(info["input_size"]))
        return Answered(info, samples, correctness.run_samples(export, samples), correctness.read_labels(path))
    finally:
        export.close()


def parity_of(answered: Answered, config, info: dict | None = None, source_file: Path | None = None) -> Report:
    from tools.validate import runner

    report = report_of()
    report.exports[LAST] = ExportResult(path=LAST, digest=None)  # what a validation of one layout holds
    run = runner.Run(config, report, source_file=source_file)
    runner.check_parity(run, LAST, info or answered.info, answered.samples, answered.answers, answered.labels)
    return report


def _other_model(tmp_path) -> Path:
    from tests.conftest import tiny_resnet

    other = tmp_path / "other.keras"
    tiny_resnet(seed=8).save(other)
    return other


def _naming(config, model_file, **changes):
    """config with model.yaml's model.source naming another model file."""
    return replace(config, **changes, model=replace(config.model, source=replace(
        config.model.source, model_file=model_file)))


def test_parity_uses_the_exports_own_source_not_model_yaml(tiny_export, tmp_path, answered):
    """model.yaml naming another model file changes nothing: the reference is the file the export records,
    found by its sha256 in the source cache (build/sources of the repository model.yaml is in)."""
    config = _naming(tiny_export.config, _other_model(tmp_path))
    report = parity_of(answered, config)
    parity = check(report, "correctness.parity")
    assert parity.passed, parity.detail
    assert parity.figures["reference"].startswith("model file ") and "sources/sha256-" in parity.figures["reference"]
    structure.check_export_info(report, LAST, tiny_export.dirs[LAST], config, 1)
    info = check(report, "structure.export_info")
    assert info.passed and "made from model file tiny.keras; model.yaml names other.keras" in info.detail


def test_parity_without_the_source_at_hand_is_not_run_and_names_where_it_looked(tiny_export, tmp_path, answered):
    # model.yaml in an empty folder: no build/sources beside it.
    config = _naming(tiny_export.config, _other_model(tmp_path), path=tmp_path / "model.yaml")
    report = parity_of(answered, config)
    parity = check(report, "correctness.parity")
    assert parity.status == "not_run" and not report.passed and not report.failures()
    assert "the source model file tiny.keras (sha256 " in parity.detail and "is not at hand" in parity.detail
    assert "other.keras (sha256 " in parity.detail and "give it with --source FILE" in parity.detail
    # Given by hand, it is used (and accepted only by its sha256).
    report = parity_of(answered, config, source_file=tiny_export.model_file)
    assert check(report, "correctness.parity").passed and report.passed


def test_parity_fails_when_the_source_holds_other_weights(tiny_export, tmp_path, answered):
    """An export whose record names a file with other weights than the graph holds: parity catches it."""
    other = _other_model(tmp_path)
    info = json.loads(json.dumps(answered.info))
    info["source"].update(file="other.keras", file_sha256=digests.sha256_file(other))
    report = parity_of(answered, _naming(tiny_export.config, other), info)
    detail = failed(report, "correctness.parity")
    assert "weights differ: the export records weights sha256" in detail and "servable vs Keras" in detail
