"""targets.<name>.golden_tolerance in model.yaml: defaults per accelerator, bounds, and the margin rule."""
from __future__ import annotations

import pytest

from tests.conftest import base_config_data
from tools.config import GOLDEN_TOLERANCE_DEFAULTS, ConfigError, GoldenTolerance, golden_tolerance_for, parse_config


def test_repository_values_and_defaults_per_accelerator():
    config = parse_config(base_config_data())
    assert golden_tolerance_for(config.targets["cpu"]) == GoldenTolerance(1e-4, 1e-3)
    assert golden_tolerance_for(config.targets["gpu"]) == GoldenTolerance(2e-2, 5e-2)
    data = base_config_data()
    for target in data["targets"].values():
        target.pop("golden_tolerance", None)
    config = parse_config(data)
    assert golden_tolerance_for(config.targets["cpu"]) == GOLDEN_TOLERANCE_DEFAULTS["none"]
    assert golden_tolerance_for(config.targets["gpu"]) == GOLDEN_TOLERANCE_DEFAULTS["nvidia"]
    assert GOLDEN_TOLERANCE_DEFAULTS["none"].probability < GOLDEN_TOLERANCE_DEFAULTS["nvidia"].probability


@pytest.mark.parametrize("value, message", [
    ({"probability": 0}, "targets.cpu.golden_tolerance.probability: must be in (0.0, 0.5], got 0"),
    ({"probability": "tight"}, "targets.cpu.golden_tolerance.probability: must be a number"),
    ({"probability": 0.01, "min_top1_margin": 0.01},
     "targets.cpu.golden_tolerance.min_top1_margin: must be at least twice probability (0.02)"),
    ({"probabilty": 0.01}, "targets.cpu.golden_tolerance: unknown key 'probabilty'"),
    ("loose", "targets.cpu.golden_tolerance: must be a mapping"),
])
def test_bad_values_name_their_key_path(value, message):
    data = base_config_data()
    data["targets"]["cpu"]["golden_tolerance"] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(data)


def test_samples_dir_is_a_path_relative_to_model_yaml(tmp_path):
    data = base_config_data()
    data["model"]["samples_dir"] = "samples"
    assert parse_config(data, base=tmp_path).model.samples_dir == tmp_path / "samples"
