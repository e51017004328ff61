"""Validation runs each layout under the oneDNN settings of the target serving it (issue 16). The layout validated
in this process, as its target asks: test_the_matching_layout_is_validated_here_and_says_so in
tests/validate/test_validate.py, on the good export's validation that file shares."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tools import paths
from tools.config import CpuMath, golden_tolerance_for
from tools.validate import settings, validate

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
