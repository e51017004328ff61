"""model.yaml keys of issue 16: targets.<cpu target>.onednn / math, and the environment and flags they render to."""
from __future__ import annotations

import copy

import pytest
import yaml

from tools import paths
from tools.config import ConfigError, CpuMath, load_config, parse_config

REPO_DATA = yaml.safe_load((paths.REPO_ROOT / paths.MODEL_YAML).read_text())


def cfg(edit):
    data = copy.deepcopy(REPO_DATA)
    edit(data)
    return parse_config(data)


def test_repository_default_is_onednn_on_fp32():
    cpu = load_config().targets["cpu"]
    assert cpu.cpu_math == CpuMath("on", "fp32")
    assert cpu.cpu_math.env() == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert load_config().targets["gpu"].cpu_math is None


@pytest.mark.parametrize("onednn, math, env, args", [
    ("auto", "fp32", {}, []),
    ("off", "fp32", {"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
    # TF Serving's own flag (tensorflow_serving/model_servers/main.cc `mixed_precision`), no fpmath variable
    ("on", "bf16", {"TF_ENABLE_ONEDNN_OPTS": "1"}, ["--mixed_precision=bfloat16"]),
    (True, "fp32", {"TF_ENABLE_ONEDNN_OPTS": "1"}, []),  # a YAML 1.1 reader's bare `on`
    (False, "fp32", {"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
])
def test_settings_render_to_the_container_env_and_flags(onednn, math, env, args):
    c = cfg(lambda d: d["targets"]["cpu"].update(onednn=onednn, math=math))
    assert c.targets["cpu"].cpu_math.env() == env
    assert c.targets["cpu"].cpu_math.args() == args


@pytest.mark.parametrize("onednn, env", [
    ("on", {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}),
    ("auto", {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}),  # harmless where TensorFlow leaves oneDNN off
])
def test_frozen_weights_render_tensorflows_variable(onednn, env):
    c = cfg(lambda d: d["targets"]["cpu"].update(onednn=onednn, frozen_weights=True))
    settings = c.targets["cpu"].cpu_math
    assert settings.env() == env and settings.args() == []
    assert settings.describe() == f"onednn: {onednn}, math: fp32, frozen_weights: true"
    assert cfg(lambda d: None).targets["cpu"].cpu_math.describe() == "onednn: on, math: fp32"  # unchanged default


def test_missing_keys_take_the_measured_default():
    def drop(d):
        d["targets"]["cpu"].pop("onednn", None)
        d["targets"]["cpu"].pop("math", None)
        d["targets"]["cpu"].pop("frozen_weights", None)
    assert cfg(drop).targets["cpu"].cpu_math == CpuMath("on", "fp32", False)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["targets"]["cpu"].update(onednn="yes"), "targets.cpu.onednn: must be one of auto, on, off; got 'yes'"),
    (lambda d: d["targets"]["cpu"].update(math="fp16"), "targets.cpu.math: must be one of fp32, bf16; got 'fp16'"),
    (lambda d: d["targets"]["cpu"].update(onednn="auto", math="bf16"),
     "targets.cpu.math: bf16 runs on oneDNN's bf16 kernels: it needs onednn: on, got onednn: auto"),
    (lambda d: d["targets"]["cpu"].update(onednn="off", math="bf16"), "needs onednn: on, got onednn: off"),
    (lambda d: d["targets"]["gpu"].update(onednn="on"), "targets.gpu.onednn: applies to CPU targets only"),
    (lambda d: d["targets"]["gpu"].update(math="bf16"), "targets.gpu.math: applies to CPU targets only"),
    (lambda d: d["targets"]["cpu"].update(onednn="off", frozen_weights=True),
     "targets.cpu.frozen_weights: frozen_weights keeps oneDNN's reordered filters: it needs onednn: on or auto, got "
     "onednn: off"),
    (lambda d: d["targets"]["cpu"].update(frozen_weights="yes"), "targets.cpu.frozen_weights:"),
    (lambda d: d["targets"]["gpu"].update(frozen_weights=True), "targets.gpu.frozen_weights: applies to CPU targets"),
])
def test_bad_values_name_the_key(edit, message):
    with pytest.raises(ConfigError, match=None) as exc:
        cfg(edit)
    assert message in str(exc.value)


def test_overlay_patch_follows_the_settings(tmp_path):
    from tools.render import render_files

    def files(onednn, math):
        c = cfg(lambda d: d["targets"]["cpu"].update(onednn=onednn, math=math))
        return render_files(c)

    on = files("on", "fp32")
    assert "TF_ENABLE_ONEDNN_OPTS" in on["k8s/overlays/cpu/cpu_math_patch.yaml"]
    assert "- path: cpu_math_patch.yaml" in on["k8s/overlays/cpu/kustomization.yaml"]
    assert "k8s/overlays/gpu/cpu_math_patch.yaml" not in on
    assert "k8s/overlays/cpu/mixed_precision_patch.yaml" not in on
    bf16 = files("on", "bf16")
    assert "value: \"--mixed_precision=bfloat16\"" in bf16["k8s/overlays/cpu/mixed_precision_patch.yaml"]
    assert "- path: mixed_precision_patch.yaml" in bf16["k8s/overlays/cpu/kustomization.yaml"]
    assert "FPMATH" not in bf16["k8s/overlays/cpu/cpu_math_patch.yaml"]
    auto = files("auto", "fp32")
    assert "k8s/overlays/cpu/cpu_math_patch.yaml" not in auto
    assert "cpu_math_patch" not in auto["k8s/overlays/cpu/kustomization.yaml"]
