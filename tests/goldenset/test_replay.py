"""The golden set replayed against the TF Serving test double: the right export passes; a wrong model fails
naming the first image whose answer differs; `python -m tools smoke` (make smoke) does the same locally."""
from __future__ import annotations

import base64
import dataclasses
import json
import shutil

import pytest

from tests.goldenset.conftest import write_golden
from tests.serving_double import ServingDouble
from tools import paths
from tools.goldenset import overlay, replay
from tools.validate import serving

# Exports of the tiny model and of wrong ones, replayed through TF Serving's loader.
pytestmark = pytest.mark.slow(seconds=7)


def golden_dir(tmp_path, tiny_export, tiny_golden, target="cpu", version=1):
    config = tiny_export.config
    if version != config.model.version:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, version=version))
    expected, images = overlay.render_texts(tiny_golden[0].golden_set, config, config.targets[target])
    return write_golden(tmp_path / "golden", {paths.GOLDEN_EXPECTED_FILE: expected, paths.GOLDEN_IMAGES_FILE: images})


def run(url, directory, version=1, deadline=5.0):
    script = replay.load_script()
    return script, script.main(["--url", url, "--model", "tiny", "--version", str(version), "--golden", str(directory),
                                "--deadline", str(deadline), "--timeout", "30"])


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_the_right_export_passes_per_image_and_batched(serving_double, tiny_export, tiny_golden, tmp_path, capsys,
                                                       target):
    directory = golden_dir(tmp_path, tiny_export, tiny_golden, target)
    _, code = run(serving_double.rest_url, directory)
    out = capsys.readouterr()
    assert code == 0, out.err
    images = len(tiny_golden[0].golden_set["images"])
    batch = tiny_export.config.targets[target].batching.max_batch_size  # 4 in the tiny config
    assert f"answered all {images} golden images (one by one and in one request of {batch})" in out.out
    rest = [c for c in serving_double.calls if c.protocol == "rest"]
    assert [c.batch for c in rest] == [1] * images + [batch] and all(c.error is None for c in rest)


@pytest.fixture(scope="module")
def wrong_double(wrong_exports):
    """One double serving each wrong export as model `tiny`, a version each (in the order of wrong_exports)."""
    models = {"tiny": {i: path for i, path in enumerate(wrong_exports.values(), start=1)}}
    with ServingDouble(models) as double:
        yield double


@pytest.mark.parametrize("case", ["other model, channels_first", "labels shuffled", "other preprocessing"])
def test_a_wrong_servable_fails_naming_the_first_differing_image(wrong_double, wrong_exports, tiny_export,
                                                                 tiny_golden, tmp_path, capsys, case):
    version = list(wrong_exports).index(case) + 1
    directory = golden_dir(tmp_path, tiny_export, tiny_golden, "cpu", version)
    script, code = run(wrong_double.rest_url, directory, version)
    err = capsys.readouterr().err
    assert code == 1
    # The first image whose answer differs, found independently by calling the wrong export directly.
    expected = json.loads((directory / paths.GOLDEN_EXPECTED_FILE).read_text())
    images = json.loads((directory / paths.GOLDEN_IMAGES_FILE).read_text())["images"]
    path = wrong_exports[case]
    export = serving.LoadedExport(path, path.parent.parent.name, "tiny", version)
    from tools.goldenset.record import answer_rows

    first = next(e["name"] for e in expected["images"]
                 if script.difference(e, answer_rows(export.predict([base64.b64decode(images[e["name"]])]))[0],
                                      expected["tolerance"]["probability"]))
    assert f"; first: {first}: " in err.splitlines()[0]
    assert "    expected: " in err and "    served:   " in err
    if case == "labels shuffled":
        assert "is labelled" in err.splitlines()[0]


def test_a_server_answering_404_until_the_deadline_fails_with_the_deadline_message(serving_double, tiny_export,
                                                                                      tiny_golden, tmp_path, capsys):
    directory = golden_dir(tmp_path, tiny_export, tiny_golden, "cpu", version=7)  # the double has 1 and 2
    _, code = run(serving_double.rest_url, directory, version=7, deadline=1.0)
    err = capsys.readouterr().err
    assert code == 1
    assert "(deadline reached): HTTP 404: {'error': 'Servable not found for request: Specific(tiny, 7)'}" in err


def _repo_with_report(tmp_path, tiny_golden):
    root = tmp_path / "repo"
    shutil.copytree(tiny_golden[1], root / paths.REPORTS_DIR)
    return root


def test_make_smoke_passes_for_the_right_model_and_fails_for_a_wrong_one(serving_double, wrong_double, tiny_export,
                                                                        tiny_golden, tmp_path, capsys):
    root = _repo_with_report(tmp_path, tiny_golden)
    assert replay.smoke(serving_double.rest_url, "cpu", version=1, deadline=5, repo_root=root,
                        config=tiny_export.config) == 0
    assert "smoke test passed: tiny version 1" in capsys.readouterr().out
    # The wrong double serves the shuffled labels as version 2: the golden set of a v2 recorded like v1's.
    report = json.loads((root / paths.REPORTS_DIR / "validate-tiny-v1.json").read_text())
    report["version"] = 2
    (root / paths.REPORTS_DIR / "validate-tiny-v2.json").write_text(json.dumps(report))
    assert replay.smoke(wrong_double.rest_url, "cpu", version=2, deadline=5, repo_root=root,
                        config=tiny_export.config) == 1
    assert "smoke test FAILED" in capsys.readouterr().err


def test_make_smoke_replays_the_committed_golden_set_by_default(serving_double, tiny_export, tiny_golden, tmp_path,
                                                               capsys):
    root = tmp_path / "repo"
    golden = golden_dir(tmp_path, tiny_export, tiny_golden, "gpu")
    shutil.copytree(golden, overlay.golden_dir(root, f"{paths.OVERLAYS_DIR}/gpu"))
    assert replay.smoke(serving_double.rest_url, "gpu", repo_root=root, config=tiny_export.config) == 0
    assert "within 0.02" in capsys.readouterr().out  # the gpu target's tolerance


def test_make_smoke_usage_errors(tiny_export, tmp_path, capsys):
    assert replay.main(["--url", "http://127.0.0.1:1", "--target", "tpu"]) == 2
    assert "--target 'tpu' is not a target in model.yaml (cpu, gpu)" in capsys.readouterr().err
    with pytest.raises(Exception, match="has no golden set"):
        replay.golden_files(tiny_export.config, tmp_path, "cpu", None)
    with pytest.raises(Exception, match="no readable validation report of tiny v5"):
        replay.golden_files(tiny_export.config, tmp_path, "cpu", 5)
