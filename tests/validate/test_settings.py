"""Validation runs each layout under the oneDNN settings of the target serving it (issue 16). The layout validated
in this process, as its target asks: test_the_matching_layout_is_validated_here_and_says_so in
tests/validate/test_validate.py, on the good export's validation that file shares."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tools import paths
from tools.config import CpuMath, golden_tolerance_for
from tools.validate import settings, validate
from tests.validate.helpers import check

LAST, FIRST = paths.LAYOUTS


def with_cpu_math(config, onednn: str, math: str = "fp32"):
    targets = {n: (replace(t, cpu_math=CpuMath(onednn, math)) if not t.is_gpu else t) for n, t in config.targets.items()}
    return replace(config, targets=targets)


def the_check(report, layout):
    found = [c for c in report.checks if c.name == "serving.settings" and c.layout == layout]
    assert len(found) == 1, [c.line() for c in report.checks]
    return found[0]


def test_settings_per_layout(tiny_export):
    on = settings.for_layout(tiny_export.config, LAST)
    assert on.env == {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_SET_ONEDNN_FPMATH_MODE": None, "TFSG_MIXED_PRECISION": None,
                      "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None}
    assert on.why == "target cpu: onednn: on, math: fp32" and on.bf16_tolerance is None
    assert on.here()  # tests/conftest.py started this process with oneDNN on, as the repository's cpu target asks
    auto = settings.for_layout(with_cpu_math(tiny_export.config, "auto"), LAST)
    assert auto.env == {"TF_ENABLE_ONEDNN_OPTS": None, "TF_SET_ONEDNN_FPMATH_MODE": None,
                        "TFSG_MIXED_PRECISION": None, "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None} and not auto.here()
    bf16 = settings.for_layout(with_cpu_math(tiny_export.config, "on", "bf16"), LAST)
    assert bf16.env == {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_SET_ONEDNN_FPMATH_MODE": None,
                        "TFSG_MIXED_PRECISION": "bfloat16", "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None} and not bf16.here()
    assert bf16.bf16_tolerance == 1e-4  # the cpu target's golden-set tolerance
    assert settings.for_layout(tiny_export.config, FIRST) is None  # GPU-served: checked here, with oneDNN on


@pytest.mark.slow(seconds=60)
def test_a_target_with_onednn_off_is_validated_in_a_child_process_with_it_off(tiny_export, tmp_path):
    config = with_cpu_math(tiny_export.config, "off")
    lines = []
    report = validate(config, 1, tiny_export.root, reports_dir=tmp_path, echo=lambda c: lines.append(c.line()))
    assert report.passed, [c.line() for c in report.failures()]
    last = the_check(report, LAST)
    assert "in a child process" in last.detail and "TF_ENABLE_ONEDNN_OPTS=0" in last.detail
    assert last.figures["onednn_enabled"] is False and last.figures["TF_ENABLE_ONEDNN_OPTS"] == "0"
    # the child's checks came back whole: calls, correctness, the golden set; layouts still compared
    names = {c.name for c in report.checks if c.layout == LAST}
    assert {"serving.request_formats", "correctness.parity", "golden_set.recorded", "badinput.batch_64"} <= names
    assert [c for c in report.checks if c.name == "layouts.agree"][0].passed
    assert set(report.golden_set["layouts"]) == {LAST, FIRST}
    assert any("serving.settings" in line for line in lines)
    assert report.machine["onednn_per_layout"][LAST]["enabled"] is False


@pytest.mark.slow(seconds=60)
def test_a_frozen_weights_target_is_validated_in_a_child_with_tensorflows_variable(tiny_export, tmp_path):
    """frozen_weights: the child runs with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1, as the server would; its Keras
    references go through a traced function (correctness.keras_outputs), since eager convolutions would share
    kernels that keep their first filter. Answers stay fp32's: the usual tolerances hold."""
    targets = {n: (replace(t, cpu_math=CpuMath("on", "fp32", True)) if not t.is_gpu else t)
               for n, t in tiny_export.config.targets.items()}
    report = validate(replace(tiny_export.config, targets=targets), 1, tiny_export.root, reports_dir=tmp_path)
    assert report.passed, [c.line() for c in report.failures()]
    last = the_check(report, LAST)
    assert "in a child process" in last.detail and "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1" in last.detail
    assert last.figures["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] == "1" and last.figures["onednn_enabled"] is True
    parity = check(report, "correctness.parity", LAST)
    assert parity.passed and parity.figures["max_abs_diff"] < 5e-5
    assert [c for c in report.checks if c.name == "layouts.agree"][0].passed  # against channels_first, without it


_TWO_EQUAL_CONVS = """
import json, sys
import numpy as np
import keras
from tools.validate.correctness import keras_outputs

inputs = keras.Input((8, 8, 4))
first, second = keras.layers.Conv2D(4, 3, padding="same"), keras.layers.Conv2D(4, 3, padding="same")
model = keras.Model(inputs, second(first(inputs)))
rng = np.random.default_rng(0)
model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()])
x = rng.standard_normal((2, 8, 8, 4)).astype("float32")
print(json.dumps({"eager": np.asarray(model(x, training=False)).tolist(), "helper": keras_outputs(model, x).tolist()}))
"""


def test_keras_references_stay_right_under_the_frozen_weights_variable():
    """Two convolutions with equal shapes and attributes (ResNet50 has many; the tiny test model none): eagerly they
    share one kernel, which under TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 keeps the first layer's filter for the second
    (TensorFlow 2.20's behaviour, the reason for correctness.keras_outputs); the helper's traced function does not."""
    import json
    import os
    import subprocess
    import sys

    def run(frozen: str | None):
        env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"}
        env.update(TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2", **({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": frozen}
                                                                         if frozen else {}))
        done = subprocess.run([sys.executable, "-c", _TWO_EQUAL_CONVS], env=env, cwd=paths.REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return {k: np.array(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}

    plain, frozen = run(None), run("1")
    assert np.allclose(plain["eager"], plain["helper"], atol=1e-5)
    assert np.allclose(frozen["helper"], plain["eager"], atol=1e-5)  # the references validation uses
    assert not np.allclose(frozen["eager"], plain["eager"], atol=1e-3)  # what eager Keras would have answered


def with_bf16_target(config, probability: float):
    config = with_cpu_math(config, "on", "bf16")
    cpu = config.targets["cpu"]
    tolerance = replace(golden_tolerance_for(cpu), probability=probability)
    return replace(config, targets={**config.targets, "cpu": replace(cpu, golden_tolerance=tolerance)})


@pytest.mark.slow(seconds=60)
def test_a_bf16_target_is_validated_with_tf_servings_bf16_rewrite(tiny_export, tmp_path):
    config = with_bf16_target(tiny_export.config, 0.05)
    report = validate(config, 1, tiny_export.root, reports_dir=tmp_path, echo=lambda c: None)
    assert report.passed, [c.line() for c in report.failures()]
    last = the_check(report, LAST)
    assert "in a child process" in last.detail and "TFSG_MIXED_PRECISION=bfloat16" in last.detail
    assert "bf16 math" in last.detail and "--mixed_precision=bfloat16" in last.detail
    assert last.figures["math"] == "bf16" and last.figures["tolerance_for_fp32_comparisons"] == 0.05
    parity = next(c for c in report.checks if c.name == "correctness.parity" and c.layout == LAST)
    assert parity.figures["tolerance"] == 0.05
    # the rewrite ran: the answers moved from fp32's (bf16 keeps 8 bits of mantissa), and only channels_last's
    assert parity.figures["max_abs_diff"] > 1e-5
    first = next(c for c in report.checks if c.name == "correctness.parity" and c.layout == FIRST)
    assert first.figures["tolerance"] == 5e-5 and first.figures["max_abs_diff"] < 5e-5
    assert next(c for c in report.checks if c.name == "layouts.agree").figures["tolerance"] == 0.05



@pytest.mark.parametrize("bf16_tolerance, passed", [(None, False), (1e-4, False), (0.05, True)])
def test_parity_allows_a_bf16_targets_tolerance_and_says_what_to_change(bf16_tolerance, passed):
    import numpy as np

    from tools.validate.correctness import Answers, Reference, check_parity
    from tools.validate.report import Report

    reference = np.array([[0.70, 0.20, 0.10]], np.float32)
    served = Answers(np.array([[0, 1]]), np.array([[0.69, 0.21]], np.float32), np.array([[b"a", b"b"]], object))
    report = Report(model="m", version=1)
    check_parity(report, LAST, served, Reference(reference, "w" * 64, "caffe", 0.0), {"source": {"weights_sha256":
                 "w" * 64}}, [b"a", b"b", b"c"], bf16_tolerance=bf16_tolerance)
    parity = report.checks[-1]
    assert parity.passed is passed and parity.figures["tolerance"] == (bf16_tolerance or 5e-5)
    if not passed:  # 0.01 apart: fp32's tolerance, or a bf16 target's too tight one
        assert ("serves bf16 math" in parity.detail) is (bf16_tolerance is not None)
        assert ("golden_tolerance.probability" in parity.detail) is (bf16_tolerance is not None)
    else:
        assert "bf16 math: the target's golden-set tolerance" in parity.detail


def test_a_bf16_layouts_same_answer_cases_allow_its_tolerance():
    from tools.validate.badinput import corpus_cases, for_bf16

    found = corpus_cases((40, 48))
    same = [c for c in found if c.same_as is not None]
    assert same and all(c.tolerance < 1e-3 for c in same)
    assert for_bf16(found, None) == found
    widened = for_bf16(found, 0.03)
    assert [c.tolerance for c in widened if c.same_as is not None] == [0.03] * len(same)
    assert [c for c in widened if c.same_as is None] == [c for c in found if c.same_as is None]
