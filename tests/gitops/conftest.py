"""Fakes for the GitOps tests: small export trees with a correct SHA256SUMS and validation reports.

No TensorFlow here: the bytes of a real export do not matter to publish, bump or status, only the contract
(the version directory, its SHA256SUMS, the digest, the report that names it).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import digests, paths


def make_export(models_dir: Path, name: str, layout: str, version: int, salt: str = "") -> str:
    """Write a small fake export of one layout and return its digest."""
    root = paths.version_dir(models_dir, name, layout, version)
    files = {
        paths.SAVED_MODEL_PB: f"graph {name} {layout} v{version}{salt}".encode(),
        f"{paths.VARIABLES_DIR}/variables.index": b"index" + salt.encode(),
        f"{paths.VARIABLES_DIR}/variables.data-00000-of-00001": bytes(range(256)) * 64 + salt.encode(),
        f"{paths.ASSETS_DIR}/{paths.LABELS_FILE}": b"tench\ngoldfish\n",
        f"{paths.ASSETS_EXTRA_DIR}/{paths.WARMUP_FILE}": b"warmup" + layout.encode(),
        f"{paths.ASSETS_EXTRA_DIR}/{paths.EXPORT_INFO_FILE}": json.dumps(
            {"model_name": name, "version": version, "layout": layout}).encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return digests.write_sums(root)


def fake_golden_set(exports: dict[str, str], images: int = 2) -> dict:
    """A golden set in the report's format (tools/goldenset/record.py) for `exports` (layout -> digest): fake image
    bytes, answers of two classes, the second image's top-1 lead too small to be stable."""
    import base64
    import hashlib

    data = [f"fake image {i}".encode() for i in range(images)]
    entries = {f"img-{i}": {"name": f"img-{i}", "source": "reference", "label": None, "format": "png", "mode": "RGB",
                            "width": 8, "height": 8, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest(),
                            "data": base64.b64encode(d).decode()} for i, d in enumerate(data)}
    answers = [{"name": f"img-{i}", "classes": [1, 0], "labels": ["goldfish", "tench"],
                "probabilities": [0.8, 0.2] if i == 0 else [0.5, 0.4999], "margin": 0.6 if i == 0 else 0.0001,
                "stable": i == 0} for i in range(images)]
    return {"format": 1, "images": entries,
            "layouts": {layout: {"digest": digest, "top_k": 2, "answers": answers} for layout, digest in exports.items()}}


def write_report(reports_dir: Path, name: str, version: int, exports: dict[str, str], passed: bool = True,
                 models_dir: Path | None = None, not_run: str | None = None) -> Path:
    """A validation report as tools validate writes it; `exports` maps layout -> digest. `not_run`:
    "unaccepted" or "accepted" adds a check that did not run (accepted: --accept-not-run was given)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    checks = [{"name": "signature", "layout": layout, "passed": True, "detail": "serving_default and predict"}
              for layout in exports]
    if not passed:
        checks.append({"name": "parity", "layout": "channels_first", "passed": False, "status": "failed",
                       "detail": "max |p_last - p_first| = 0.3 > 1e-3"})
    if not_run:
        checks.append({"name": "serving.calls", "layout": "channels_first", "passed": False, "status": "not_run",
                       "detail": "NCHW Conv2D cannot run here"})
        passed = passed and not_run == "accepted"
    report = {
        "model": name, "version": version, "passed": passed, "accepted_not_run": not_run == "accepted",
        "not_run": ["serving.calls (channels_first)"] if not_run else [],
        "exports": {layout: {"path": str(paths.version_dir(models_dir or Path("build/models"), name, layout, version)),
                             "digest": digest} for layout, digest in exports.items()},
        "checks": checks,
        "golden_set": fake_golden_set(exports),
    }
    json_path = paths.validation_report(reports_dir, name, version, "json")
    json_path.write_text(json.dumps(report, indent=2))
    rows = "\n".join(f"| {c['name']} | {c['layout']} | {'pass' if c['passed'] else 'FAIL'} | {c['detail']} |"
                     for c in checks)
    paths.validation_report(reports_dir, name, version, "md").write_text(
        f"## Validation of {name} v{version}: {'passed' if passed else 'FAILED'}\n\n"
        f"| check | layout | result | detail |\n| --- | --- | --- | --- |\n{rows}\n")
    return json_path


def make_release(root: Path, name: str = "resnet", version: int = 2, layouts=paths.LAYOUTS, passed: bool = True,
                 salt: str = "", not_run: str | None = None) -> dict[str, str]:
    """Exports of every layout plus a report under root/build; returns layout -> digest."""
    models_dir, reports_dir = root / paths.MODELS_DIR, root / paths.REPORTS_DIR
    found = {layout: make_export(models_dir, name, layout, version, salt) for layout in layouts}
    write_report(reports_dir, name, version, found, passed, models_dir, not_run)
    return found


@pytest.fixture
def fakes():
    """The helpers above, for tests in this folder."""
    class Fakes:
        export = staticmethod(make_export)
        report = staticmethod(write_report)
        release = staticmethod(make_release)

    return Fakes
