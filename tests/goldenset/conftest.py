"""Shared fixtures of the golden-set tests: the tiny export validated once, its golden set recorded once, and
exports of wrong models.

Wrong models, each one export of the shared tiny model (tests/conftest.py) changed in one way a bad rollout
could change it: another model's channels_first graph, the labels shuffled, another preprocessing.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import TINY_LABELS, TINY_SIZE, tiny_config_data, tiny_resnet


@pytest.fixture(scope="session")
def tiny_validation(tiny_export, tmp_path_factory):
    """(report, reports_dir) of validating the tiny export once."""
    from tools.validate import validate

    reports = tmp_path_factory.mktemp("tiny-reports")
    report = validate(tiny_export.config, models_dir=tiny_export.root, reports_dir=reports)
    assert report.passed, [c.line() for c in report.failures()]
    return report, reports


@pytest.fixture(scope="session")
def tiny_loaded(tiny_export) -> dict:
    """layout -> the tiny export loaded as validation loads it (tools.validate.serving.LoadedExport: TF Serving's
    C API session and Python's loader, several seconds each), loaded once. Answering leaves it as it was."""
    from tools.validate.serving import LoadedExport

    return {layout: LoadedExport(path, layout, tiny_export.name, tiny_export.version)
            for layout, path in tiny_export.dirs.items()}


@pytest.fixture(scope="session")
def tiny_golden(tiny_export, tiny_loaded, tmp_path_factory):
    """(report, reports_dir): the tiny export's golden set recorded as validation records it (the same
    record_layout, on each layout loaded as validation loads it, into a report written by the same writer),
    without validation's other checks, which cost a whole validation. Overlays, the smoke test and the analysis
    Job read only this from a report: its golden set and each layout's digest. test_record.py shows a whole
    validation records exactly this golden set."""
    from tools import digests
    from tools.goldenset.record import record_layout
    from tools.validate.report import ExportResult, Report

    report = Report(model=tiny_export.name, version=tiny_export.version)
    for layout, path in tiny_export.dirs.items():
        report.exports[layout] = ExportResult(path=str(path), digest=digests.version_digest(path))
        record_layout(report, layout, tiny_loaded[layout], tiny_export.config, TINY_SIZE)
    assert report.passed, [c.line() for c in report.failures()]
    reports = tmp_path_factory.mktemp("tiny-golden")
    report.write(reports)
    return report, reports


def _export(tmp_path_factory, tiny_model_files, name: str, *, model_file=None, labels=None, preprocessing=None,
            layouts=("channels_last",)) -> Path:
    from export.api import export_model
    from tools.config import parse_config

    model, labels_file = tiny_model_files
    d = tmp_path_factory.mktemp(f"wrong-{name}")
    if labels is not None:
        labels_file = d / "labels.txt"
        labels_file.write_text("\n".join(labels) + "\n")
    data = tiny_config_data(model_file or model, labels_file)
    if preprocessing:
        data["model"]["preprocessing"] = preprocessing
    dirs = export_model(parse_config(copy.deepcopy(data)), version=1, output_dir=d / "models", layouts=layouts,
                        verbose=False)
    return dirs[layouts[0]]


@pytest.fixture(scope="session")
def labels_shuffled_export(tmp_path_factory, tiny_model_files) -> Path:
    """The tiny model's channels_last export with its labels shuffled: the one wrong export some files need alone."""
    return _export(tmp_path_factory, tiny_model_files, "labels", labels=TINY_LABELS[1:] + TINY_LABELS[:1])


@pytest.fixture(scope="session")
def wrong_exports(tmp_path_factory, tiny_model_files, labels_shuffled_export) -> dict[str, Path]:
    """name -> version directory of a wrong servable of the tiny model's name."""
    other_dir = tmp_path_factory.mktemp("other-model")
    other = other_dir / "other.keras"
    tiny_resnet(seed=99).save(other)
    return {
        "other model, channels_first": _export(tmp_path_factory, tiny_model_files, "other", model_file=other,
                                               layouts=("channels_first",)),
        "labels shuffled": labels_shuffled_export,
        "other preprocessing": _export(tmp_path_factory, tiny_model_files, "prep", preprocessing="tf"),
    }


def write_golden(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def golden_images(directory: Path) -> list[str]:
    return [i["name"] for i in json.loads((directory / "expected.json").read_text())["images"]]
