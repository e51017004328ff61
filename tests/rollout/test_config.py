"""model.yaml targets.<t>.rollout.strategy / canary: read, defaulted and refused with the key path."""
from __future__ import annotations

import copy

import pytest

from tests.rollout.helpers import CANARY, canary_data
from tests.conftest import base_config_data
from tools.config import DEFAULT_CANARY_STEPS, CanaryStep, ConfigError, parse_config


def test_rolling_stays_the_default_of_every_target():
    config = parse_config(base_config_data())
    assert {t.rollout.strategy for t in config.targets.values()} == {"rolling"}
    assert all(t.rollout.canary is None for t in config.targets.values())


def test_a_canary_target_keeps_surge_settings_and_reads_steps_and_thresholds():
    gpu = parse_config(canary_data()).targets["gpu"]
    assert (gpu.rollout.strategy, gpu.rollout.max_surge, gpu.rollout.max_unavailable) == ("canary", 0, 1)
    assert gpu.rollout.canary.steps == (CanaryStep(set_weight=50), CanaryStep(pause="10m"),
                                        CanaryStep(set_weight=75), CanaryStep(pause=None))
    a = gpu.rollout.canary.analysis
    assert (a.max_error_ratio, a.max_p99_latency_ms, a.golden_set, a.prometheus_url, a.interval, a.failure_limit) == \
        (0.02, 800.0, True, None, "2m", 1)


def test_canary_defaults():
    data = base_config_data()
    data["targets"]["cpu"]["rollout"] = {"strategy": "canary"}
    cpu = parse_config(data).targets["cpu"]
    assert cpu.rollout.canary.steps == DEFAULT_CANARY_STEPS
    assert cpu.rollout.canary.analysis.golden_set is True and cpu.rollout.canary.analysis.max_error_ratio == 0.01


BAD = {
    "strategy typo": (lambda r: r.update(strategy="canery"), "targets.gpu.rollout.strategy", "must be one of rolling, canary"),
    "canary under rolling": (lambda r: r.update(strategy="rolling"), "targets.gpu.rollout.canary", "strategy: canary only"),
    "no steps": (lambda r: r["canary"].update(steps=[]), "targets.gpu.rollout.canary.steps", "non-empty list"),
    "only pauses": (lambda r: r["canary"].update(steps=[{"pause": "1m"}]), "targets.gpu.rollout.canary.steps",
                    "at least one set_weight"),
    "weights go down": (lambda r: r["canary"].update(steps=[{"set_weight": 50}, {"set_weight": 20}]),
                        "targets.gpu.rollout.canary.steps", "must increase"),
    "weight over 100": (lambda r: r["canary"].update(steps=[{"set_weight": 120}]),
                        "targets.gpu.rollout.canary.steps[0].set_weight", "at most 100"),
    "two keys in a step": (lambda r: r["canary"].update(steps=[{"set_weight": 20, "pause": "1m"}]),
                           "targets.gpu.rollout.canary.steps[0]", "exactly one of"),
    "bad duration": (lambda r: r["canary"].update(steps=[{"set_weight": 20}, {"pause": "ten minutes"}]),
                     "targets.gpu.rollout.canary.steps[1].pause", "not a valid duration"),
    "ratio over 1": (lambda r: r["canary"]["analysis"].update(max_error_ratio=2),
                     "targets.gpu.rollout.canary.analysis.max_error_ratio", "must be in (0.0, 1.0]"),
    "unknown analysis key": (lambda r: r["canary"]["analysis"].update(max_error_rate=0.1),
                             "targets.gpu.rollout.canary.analysis", "unknown key 'max_error_rate'"),
    "prometheus url": (lambda r: r["canary"]["analysis"].update(prometheus_url="prometheus:9090"),
                       "targets.gpu.rollout.canary.analysis.prometheus_url", "http(s)://"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_canary_settings_name_their_key(case):
    edit, key, message = BAD[case]
    data = canary_data()
    edit(data["targets"]["gpu"]["rollout"])
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert key in str(err.value) and message in str(err.value), str(err.value)
