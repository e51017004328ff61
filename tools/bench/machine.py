"""The machine a benchmark ran on, and the FP32 peak its numbers are compared with."""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# CPU flags that decide how fast a convolution can run, in the order the report lists them.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                     "amx_bf16", "amx_int8")

# Multiply-accumulates per image of Keras applications' ResNets at 224x224 (the published figures: He et al.
# 2016 and the Keras applications table); other models are counted from their layers.
PUBLISHED_GMAC = {"ResNet50": 4.1, "ResNet101": 7.8, "ResNet152": 11.5,
                  "ResNet50V2": 4.1, "ResNet101V2": 7.8, "ResNet152V2": 11.5}


def _cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as a dict."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if info:
                break
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def machine_info(cpuinfo_text: str | None = None) -> dict:
    info = _cpuinfo(cpuinfo_text)
    flags = set(info.get("flags", "").split())
    model = info.get("model name", platform.processor() or "unknown")
    ghz = None
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        ghz = float(m.group(1))
    elif info.get("cpu MHz"):
        ghz = round(float(info["cpu MHz"]) / 1000, 2)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {
        "cpu_model": model,
        "vendor": info.get("vendor_id", "unknown"),  # GenuineIntel, AuthenticAMD
        "cores": cores,
        "ghz": ghz,
        "ghz_source": "model name" if m else "/proc/cpuinfo cpu MHz (nominal; turbo not known)",
        "flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def flops_per_cycle(flags: list[str]) -> tuple[int, str]:
    """FP32 FLOP per cycle per core from the vector ISA, assuming two FMA units (what server cores have)."""
    if "avx512f" in flags:
        return 64, "AVX-512: 2 FMA units x 16 FP32 lanes x 2 FLOP per FMA"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2: 2 FMA units x 8 FP32 lanes x 2 FLOP per FMA"
    return 16, "SSE: 2 units x 4 FP32 lanes x 2 FLOP"


def peak_gflops(machine: dict) -> tuple[float | None, str]:
    """(cores x GHz x FLOP/cycle, how it was estimated)."""
    per_cycle, why = flops_per_cycle(machine["flags"])
    if not machine.get("ghz"):
        return None, "clock speed unknown"
    peak = machine["cores"] * machine["ghz"] * per_cycle
    return peak, (f"{machine['cores']} cores x {machine['ghz']:g} GHz ({machine['ghz_source']}) x {per_cycle} "
                  f"FLOP/cycle ({why}); AMX tiles, if any, are not counted: TensorFlow's FP32 graph does not use them")


def model_gflop_per_image(source_info: dict, model, input_size: tuple[int, int]) -> tuple[float, str]:
    """FLOP per image (2 x multiply-accumulates): the published figure for a known ResNet, else counted."""
    arch = source_info.get("architecture")
    scale = input_size[0] * input_size[1] / (224 * 224)
    if arch in PUBLISHED_GMAC:
        gmac = PUBLISHED_GMAC[arch] * scale
        return 2 * gmac, f"{arch}: {PUBLISHED_GMAC[arch]} GMAC per 224x224 image (published), x2 FLOP per MAC"
    return 2 * count_gmac(model), "counted from the model's Conv2D and Dense layers, x2 FLOP per MAC"


def count_gmac(model) -> float:
    """Multiply-accumulates of the convolution and dense layers of a Keras model, per image, in billions."""
    total = 0
    for layer in _layers(model):
        kind = type(layer).__name__
        try:
            out_shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            kernel = layer.kernel.shape  # (kh, kw, cin, cout) or depthwise (kh, kw, cin, mult)
            last = layer.data_format == "channels_last"
            spatial = out_shape[1] * out_shape[2] if last else out_shape[2] * out_shape[3]
            if kind == "Conv2D":
                total += spatial * kernel[0] * kernel[1] * kernel[2] * kernel[3] // max(1, getattr(layer, "groups", 1))
            else:
                total += spatial * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        elif kind == "Dense":
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return total / 1e9


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _layers(layer)
        else:
            yield layer


def all_flags(cpuinfo_text: str | None = None) -> set[str]:
    """Every flag /proc/cpuinfo lists for the first processor."""
    return set(_cpuinfo(cpuinfo_text).get("flags", "").split())
