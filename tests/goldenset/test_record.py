"""Validation records the golden set: deterministic, and exactly the export's own answers."""
from __future__ import annotations

import base64
import json

import pytest

from tools import paths
from tools.goldenset import record


@pytest.mark.slow(seconds=45)  # a whole validation (tiny_validation)
def test_report_holds_images_and_each_layouts_answers(tiny_loaded, tiny_validation):
    report, reports_dir = tiny_validation
    golden = report.golden_set
    assert set(golden["layouts"]) == set(paths.LAYOUTS)
    on_disk = json.loads(paths.validation_report(reports_dir, "tiny", 1, "json").read_text())["golden_set"]
    assert on_disk == json.loads(json.dumps(golden))
    assert len(golden["images"]) >= 8
    for layout, entry in golden["layouts"].items():
        assert entry["digest"] == report.exports[layout].digest and entry["top_k"] == 3
        export = tiny_loaded[layout]
        for answer in entry["answers"]:
            data = base64.b64decode(golden["images"][answer["name"]]["data"])
            [row] = record.answer_rows(export.predict([data]))
            assert row == {k: answer[k] for k in ("classes", "labels", "probabilities")}
            assert answer["margin"] == record.top1_margin(row["probabilities"])
    names = {c.name for c in report.checks if c.name.startswith("golden_set.")}
    assert names == {"golden_set.recorded", "golden_set.batch", "golden_set.size"}
    assert "Golden set (replayed by the PostSync smoke test" in report.to_markdown()


@pytest.mark.slow(seconds=10)  # tiny_golden
def test_a_validation_and_a_second_recording_give_identical_golden_sets(tiny_validation, tiny_golden):
    """Deterministic: the images drawn again, each layout loaded again and asked again (tiny_golden records with
    validation's own record_layout, without validation's other checks) give the same golden set, byte for byte
    in the reports on disk."""
    first = paths.validation_report(tiny_validation[1], "tiny", 1, "json").read_text()
    second = paths.validation_report(tiny_golden[1], "tiny", 1, "json").read_text()
    assert json.loads(first)["golden_set"] == json.loads(second)["golden_set"]
    assert json.loads(first)["golden_set"]["layouts"]  # not two empty sets


def test_small_top1_lead_is_flagged_against_the_widest_target_margin(tiny_export, tiny_loaded):
    from tools.config import parse_config
    from tools.validate.report import ExportResult, Report
    from tests.conftest import tiny_config_data

    data = tiny_config_data(tiny_export.model_file, tiny_export.labels_file)
    data["targets"]["cpu"]["golden_tolerance"] = {"probability": 0.01, "min_top1_margin": 0.99}
    config = parse_config(data)
    report = Report(model="tiny", version=1)
    report.exports["channels_last"] = ExportResult(path="x", digest="sha256:" + "0" * 64)
    export = tiny_loaded["channels_last"]
    entry = record.record_layout(report, "channels_last", export, config, (40, 48))
    assert entry["answers"] and not any(a["stable"] for a in entry["answers"])
    [recorded] = [c for c in report.checks if c.name == "golden_set.recorded"]
    assert recorded.passed and f"{len(entry['answers'])} flagged unstable" in recorded.detail


def test_user_samples_join_the_set_with_their_labels(tiny_export, tiny_loaded, tmp_path):
    from PIL import Image

    from tools.config import parse_config
    from tools.validate.report import ExportResult, Report
    from tests.conftest import tiny_config_data

    (tmp_path / "samples" / "red").mkdir(parents=True)
    Image.new("RGB", (30, 20), "red").save(tmp_path / "samples" / "red" / "one.png")
    data = tiny_config_data(tiny_export.model_file, tiny_export.labels_file)
    data["model"]["samples_dir"] = str(tmp_path / "samples")
    report = Report(model="tiny", version=1)
    report.exports["channels_last"] = ExportResult(path="x", digest=None)
    export = tiny_loaded["channels_last"]
    record.record_layout(report, "channels_last", export, parse_config(data), (40, 48))
    sample = report.golden_set["images"]["red/one.png"]
    assert (sample["source"], sample["label"], sample["width"]) == ("sample", "red", 30)
    assert report.golden_set["layouts"]["channels_last"]["answers"][-1]["name"] == "red/one.png"
