"""What the validator's tests share: find a check in a report, assert it failed, run a validation, copy the
shared tiny export to break it."""
from __future__ import annotations

import shutil
from pathlib import Path

from tools import paths
from tools.validate import validate
from tools.validate.report import Report

LAST, FIRST = paths.LAYOUTS


def vdir(models: Path, tiny_export, layout: str = LAST, version: int | str = 1) -> Path:
    return models / tiny_export.name / layout / str(version)


def copy_models(tiny_export, root: Path) -> Path:
    """A private copy of the tiny export's <name>/ tree under root, free to break; returns root."""
    shutil.copytree(Path(tiny_export.root) / tiny_export.name, root / tiny_export.name, symlinks=True)
    return root


def check(report: Report, name: str, layout: str | None = LAST):
    found = [c for c in report.checks if c.name == name and c.layout == layout]
    assert found, f"no {name} check for {layout}; checks: {[(c.name, c.layout) for c in report.checks]}"
    return found[0]


def failed(report: Report, name: str, layout: str | None = LAST) -> str:
    c = check(report, name, layout)
    assert not c.passed, f"{name} passed: {c.detail}"
    assert not report.passed
    return c.detail


def run(tiny_export, tmp_path, config=None, **kwargs) -> Report:
    return validate(config or tiny_export.config, reports_dir=tmp_path / "reports", **kwargs)


def config_data(tiny_export) -> dict:
    """The tiny export's model.yaml as data."""
    from tests.conftest import tiny_config_data

    return tiny_config_data(tiny_export.model_file, tiny_export.labels_file)
