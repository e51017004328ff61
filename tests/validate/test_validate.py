"""The validator end to end on the good export (report contract, CLI, --all, checks that cannot run here) and the
logic of its layout and bad-input checks. Broken exports: tests/validate/test_broken_exports.py."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from tools import digests, paths
from tools.validate import badinput, layouts
from tools.validate.report import ExportResult, Report
from tests.validate.helpers import FIRST, LAST, check, config_data, copy_models, run, vdir


# ------------------------------------------------------------------------------------------ good export

def _write_config(tiny_export, tmp_path) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(config_data(tiny_export)))
    return path


def _two_versions(tiny_export, root: Path) -> Path:
    """A copy of the tiny export with a version 2 beside version 1: an identical copy is a valid export of 2."""
    models = copy_models(tiny_export, root)
    for layout in paths.LAYOUTS:
        v2 = vdir(models, tiny_export, layout, 2)
        shutil.copytree(vdir(models, tiny_export, layout, 1), v2)
        info_path = v2 / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE
        info = json.loads(info_path.read_text())
        info["version"] = 2
        info_path.write_text(json.dumps(info))
        digests.write_sums(v2)
    return models


@dataclass
class CliRun:
    code: int  # the CLI's exit status
    out: str  # what it printed
    reports: list  # the Report of each version, as tools.validate.runner.validate returned it
    reports_dir: Path
    models: Path


@pytest.fixture(scope="module")
def good_all(tiny_export, tmp_path_factory) -> CliRun:
    """ONE run of `python -m tools validate --all` on a good export of versions 1 and 2: two whole validations
    (the costliest thing in this file), shared by the tests of the report contract, the CLI's output, --all and
    the oneDNN settings line. runner.validate is wrapped only to keep the Report objects it returns."""
    from tools.validate import cli, runner

    tmp = tmp_path_factory.mktemp("good-all")
    models = _two_versions(tiny_export, tmp / "models")
    reports, real = [], runner.validate

    def keeping_the_report(*args, **kwargs):
        reports.append(real(*args, **kwargs))
        return reports[-1]

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(runner, "validate", keeping_the_report)
        code = cli.main(["--all", "--models-dir", str(models), "--reports-dir", str(tmp / "r"), "--source",
                         str(tiny_export.model_file), "--config", str(_write_config(tiny_export, tmp))])
    return CliRun(code=code, out=out.getvalue(), reports=reports, reports_dir=tmp / "r", models=models)


@pytest.mark.slow(seconds=110)  # builds good_all, which the tests below share
def test_good_export_passes_every_check_and_writes_the_report_contract(tiny_export, good_all):
    report = good_all.reports[0]
    assert report.version == 1
    assert report.passed, "\n".join(c.line() for c in report.failures())
    assert all(c.figures for c in report.checks), "every line carries its figures"
    names = {c.name for c in report.checks}
    for expected in ("structure.digest", "graph.ops", "graph.layout", "serving.loaders_agree",
                     "serving.request_formats", "serving.warmup", "correctness.parity", "correctness.batching",
                     "badinput.huge_jpeg_header", "badinput.batch_64", "layouts.agree", "layouts.weights"):
        assert expected in names
    data = json.loads(paths.validation_report(good_all.reports_dir, "tiny", 1, "json").read_text())
    assert data["model"] == "tiny" and data["version"] == 1 and data["passed"] is True
    assert set(data) >= {"tensorflow_version", "exports", "checks", "tolerances", "machine"}
    for layout in paths.LAYOUTS:
        export_dir = vdir(good_all.models, tiny_export, layout)
        assert data["exports"][layout] == {"path": str(export_dir), "digest": digests.version_digest(export_dir),
                                           "passed": True}
    assert all(set(c) == {"name", "layout", "status", "passed", "detail", "figures"} for c in data["checks"])
    assert all(c["status"] == "passed" for c in data["checks"])
    assert data["not_run"] == [] and data["accepted_not_run"] is False
    md = paths.validation_report(good_all.reports_dir, "tiny", 1, "md").read_text()
    assert "| ✓ | channels_first | `correctness.parity` |" in md and "passed" in md.splitlines()[0]
    assert "loaded through TF Serving's C++ loader" in md and "oneDNN on (TF_ENABLE_ONEDNN_OPTS=" in md
    # Nothing half-written is left in the reports directory (the run validated versions 1 and 2).
    assert sorted(p.name for p in good_all.reports_dir.iterdir()) == [
        "validate-tiny-v1.json", "validate-tiny-v1.md", "validate-tiny-v2.json", "validate-tiny-v2.md"]


def test_the_matching_layout_is_validated_here_and_says_so(good_all):
    """Issue 16 (tools/validate/settings.py): the layout a CPU target serves with oneDNN on, as this process
    runs, is validated in this process and its line says under what. (The child-process case and the settings
    per layout: tests/validate/test_settings.py.)"""
    report = good_all.reports[0]
    settings = [c for c in report.checks if c.name == "serving.settings"]
    assert sorted(c.layout for c in settings) == sorted(paths.LAYOUTS), [c.line() for c in settings]
    last = check(report, "serving.settings", LAST)
    assert last.passed and "in this process" in last.detail and "target cpu: onednn: on, math: fp32" in last.detail
    assert last.figures["onednn_enabled"] is True
    first = check(report, "serving.settings", FIRST)
    assert "no CPU target serves channels_first" in first.detail
    # The GPU's export runs on this CPU through grappler's CPU layout conversion, and both lines say so.
    for name in ("serving.settings", "serving.load"):
        assert "cpu_layout_conversion: NCHW_TO_NHWC" in check(report, name, FIRST).detail
        assert check(report, name, FIRST).figures["cpu_layout_conversion"] == "NCHW_TO_NHWC"
        assert "cpu_layout_conversion" not in check(report, name, LAST).detail
    assert "cpu_layout_conversion" not in check(report, "serving.load", LAST).figures


# ------------------------------------------------------------------------------------------ layouts

@pytest.mark.slow(seconds=40)
def test_checks_that_cannot_run_are_not_run_never_passed(tiny_export, tmp_path, monkeypatch):
    monkeypatch.setattr(layouts, "_PROBE", (False, "simulated: no NCHW kernel"))
    report = run(tiny_export, tmp_path, version=1, models_dir=tiny_export.root)
    agree = check(report, "layouts.agree", None)
    assert agree.status == "not_run" and not agree.passed and "simulated: no NCHW kernel" in agree.detail
    calls = check(report, "serving.calls", FIRST)
    assert calls.status == "not_run" and "simulated: no NCHW kernel" in calls.detail
    assert calls.line().startswith("○ channels_first serving.calls") and "not run: " in calls.line()
    assert not [c for c in report.checks if c.layout == FIRST and c.name.startswith(("correctness", "badinput"))]
    # The graphs and weights are still compared, as checks of their own that did run.
    assert check(report, "layouts.graphs", None).passed and check(report, "layouts.weights", None).passed
    assert not report.failures() and not report.passed
    assert "2 not run" in report.counts() and report.verdict().startswith("NOT PASSED: checks did not run")
    data = json.loads(paths.validation_report(tmp_path / "reports", "tiny", 1, "json").read_text())
    assert data["passed"] is False and data["not_run"] == ["serving.calls (channels_first)", "layouts.agree"]
    md = paths.validation_report(tmp_path / "reports", "tiny", 1, "md").read_text()
    assert "| ○ | channels_first | `serving.calls` | not run: " in md

    # Accepted, they pass the report and stay listed in it. channels_first alone is enough to show it (its calls
    # do not run), and costs a load instead of a second whole validation.
    accepted = run(tiny_export, tmp_path, paths_=[tiny_export.dirs[FIRST]], accept_not_run=True)
    assert accepted.passed and "1 not run (accepted)" in accepted.counts()
    data = json.loads(paths.validation_report(tmp_path / "reports", "tiny", 1, "json").read_text())
    assert data["passed"] is True and data["accepted_not_run"] is True
    assert data["not_run"] == ["serving.calls (channels_first)"]


def test_graph_comparison_ignores_layout_ops_but_not_computation(tiny_export, tmp_path):
    from tools.validate.tfs_formats import read_meta_graph

    last, first = (read_meta_graph(tiny_export.dirs[lay]) for lay in paths.LAYOUTS)
    assert layouts.graph_difference(last, first) == {}
    node = first.graph_def.library.function[0].node_def.add()
    node.op, node.name = "Relu", "extra_relu"
    assert layouts.graph_difference(last, first) == {"Relu": (4, 5)}


def test_layouts_holding_different_weights_fail(tiny_export, monkeypatch):
    original = layouts.read_weights

    def one_value_changed(version_dir):
        weights = original(version_dir)
        if Path(version_dir) == tiny_export.dirs[FIRST]:
            name = sorted(weights)[0]
            weights[name] = weights[name] + 1
        return weights

    monkeypatch.setattr(layouts, "read_weights", one_value_changed)
    report = Report(model="tiny", version=1)
    assert not layouts.check_weights(report, dict(tiny_export.dirs), {LAST: {}, FIRST: {}})
    assert report.checks[-1].detail.startswith("1 variables differ, e.g. ")


# ------------------------------------------------------------------------------------------ bad input logic

class StubExport:
    """Answers every request with a fixed prediction, or refuses every request."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse

    def predict(self, images):
        import numpy as np

        from tools.validate import tfs_formats as tfs

        if self.refuse:
            raise tfs.ServingError("INVALID_ARGUMENT", "refused")
        n = len(images)
        return {"classes": np.zeros((n, 2), np.int64), "probabilities": np.full((n, 2), 0.5, np.float32),
                "labels": np.full((n, 2), b"x", dtype=object)}


def case(name):
    return next(c for c in badinput.cases((8, 8), 1024) if c.name == name)


def test_bad_input_that_gets_a_prediction_instead_of_an_error_fails():
    ok, detail, figures = badinput.run_case(StubExport(), case("truncated_jpeg"), k=2)
    assert not ok and "answered a prediction, expected INVALID_ARGUMENT containing 'Invalid JPEG data'" in detail
    assert figures["result"] == "prediction"


def test_good_input_that_is_refused_fails():
    ok, detail, _ = badinput.run_case(StubExport(refuse=True), case("cmyk_jpeg"), k=2)
    assert not ok and "refused (refused), expected a prediction" in detail


def test_error_that_does_not_name_the_problem_fails():
    ok, detail, _ = badinput.run_case(StubExport(refuse=True), case("huge_jpeg_header"), k=2)
    assert not ok and "expected INVALID_ARGUMENT containing 'image declares'" in detail


def test_peak_memory_above_the_bound_fails():
    bounded = replace(case("one_pixel"), rss_bound_mb=-1)
    ok, detail, figures = badinput.run_case(StubExport(), bounded, k=2)
    assert not ok and "above the -1 MiB bound" in detail and "peak_rss_growth_mb" in figures


# ------------------------------------------------------------------------------------------ CLI

def test_cli_passes_on_a_good_export(good_all):
    assert good_all.code == 0, good_all.out
    assert "✓ channels_last  structure.digest" in good_all.out and "✓ tiny v1: PASSED" in good_all.out
    assert (good_all.reports_dir / "validate-tiny-v1.md").is_file()


def test_cli_exit_status_1_and_a_cross_on_a_broken_export(tiny_export, tmp_path, models, capsys):
    from tools.validate.cli import main

    shutil.rmtree(vdir(models, tiny_export) / paths.VARIABLES_DIR)
    code = main([str(vdir(models, tiny_export)), "--reports-dir", str(tmp_path / "r"),
                 "--config", str(_write_config(tiny_export, tmp_path))])
    out = capsys.readouterr().out
    assert code == 1 and "✗ channels_last  structure.files" in out and "FAILED" in out


def test_cli_no_exported_version_is_a_one_line_error(tiny_export, tmp_path, capsys):
    from tools.validate.cli import main

    (tmp_path / "empty" / "tiny" / LAST / "abc").mkdir(parents=True)
    code = main(["--models-dir", str(tmp_path / "empty"), "--config", str(_write_config(tiny_export, tmp_path))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: version 1 of tiny is not exported in") and "make export VERSION=1" in err
    assert main(["--all", "--models-dir", str(tmp_path / "empty"), "--config",
                 str(_write_config(tiny_export, tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no exported version of tiny in") and "channels_last/abc" in err


def test_cli_a_version_not_exported_is_a_usage_error_that_writes_nothing(tiny_export, tmp_path, capsys):
    from tools.validate.cli import main

    code = main(["--version", "9", "--models-dir", str(tiny_export.root), "--reports-dir", str(tmp_path / "r"),
                 "--config", str(_write_config(tiny_export, tmp_path))])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"error: version 9 of tiny is not exported in {tiny_export.root}/tiny "
                                 "(exported: 1): run `make export VERSION=9` first\n")
    assert not (tmp_path / "r").exists()


def test_cli_validates_model_version_by_default(tiny_export, tmp_path, monkeypatch, capsys):
    """Which version the CLI hands to the runner, with versions 1 and 2 exported and model.version 1: the runner
    is replaced by one that records its arguments (what a validation then does: test_cli_passes_on_a_good_export
    and test_cli_validates_every_version_with_all run the real one)."""
    from tools.validate import cli, runner

    models = _two_versions(tiny_export, tmp_path / "models")
    calls = []

    def recording(config, version=None, models_dir=None, **kwargs):
        calls.append((version, Path(models_dir), kwargs.get("paths_")))
        report = Report(model=config.model.name, version=version)
        report.exports[LAST] = ExportResult(path=str(vdir(models, tiny_export, LAST, version)), digest=None)
        report.add("recorded", LAST, True, "the runner was replaced by a recorder")
        return report

    monkeypatch.setattr(runner, "validate", recording)
    assert cli.main(["--models-dir", str(models), "--reports-dir", str(tmp_path / "r"),
                     "--config", str(_write_config(tiny_export, tmp_path))]) == 0
    out = capsys.readouterr().out
    assert calls == [(1, models, None)]
    assert "validating tiny v1" in out and "validating tiny v2" not in out


def test_cli_validates_every_version_with_all(good_all):
    assert good_all.code == 0, good_all.out
    assert "validating tiny v1" in good_all.out and "validating tiny v2" in good_all.out
    assert [r.version for r in good_all.reports] == [1, 2] and all(r.passed for r in good_all.reports)
    assert "✓ tiny v2: PASSED" in good_all.out and (good_all.reports_dir / "validate-tiny-v2.json").is_file()


def test_cli_rejects_version_with_paths(tmp_path, capsys):
    from tools.validate.cli import main

    assert main(["--version", "1", str(tmp_path)]) == 2
    assert "either --version/--all or version directories" in capsys.readouterr().err
