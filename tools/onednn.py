"""Turn TensorFlow's oneDNN kernels on before TensorFlow starts, and say afterwards what was in force.

Why: TensorFlow turns oneDNN on by default only on some Intel CPUs (AVX512-VNNI/BF16, AMX;
tensorflow/core/util/util.cc `IsMKLEnabled`), but the CPU targets serve with it on by default (issue 16:
`make bench` measured it faster on AVX2-only AMD EPYCs too), so validation runs channels_last under the same
kernels in this process instead of a child. It also runs NCHW convolutions, which TensorFlow's stock CPU kernels
refuse ("The Conv2D op currently only supports the NHWC tensor format on the CPU"): validation runs the
channels_first export through grappler's CPU layout conversion anyway (tools/validate/nchw_on_cpu.py: oneDNN's
NCHW convolutions fall back to a reference kernel on CPUs without AVX-512). The switch is the environment
variable TF_ENABLE_ONEDNN_OPTS, read once, when TensorFlow first asks; so `prepare()` must run before the first
`import tensorflow` of the process (tools/__main__.py, export/__main__.py and tests/conftest.py call it).

An explicit TF_ENABLE_ONEDNN_OPTS=0 in the environment is the user's choice and is kept; the report says so.
TF_ONEDNN_ASSUME_FROZEN_WEIGHTS is dropped instead: it makes answers wrong in processes like ours (below).
"""
from __future__ import annotations

import os
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"
_SET_HERE = "_TFSG_ONEDNN_SET_HERE"  # marks, for child processes too, that the value came from prepare()


def prepare() -> None:
    """Set TF_ENABLE_ONEDNN_OPTS=1 unless the environment already says something, and drop
    TF_ONEDNN_ASSUME_FROZEN_WEIGHTS. No-op once TF is loaded."""
    if "tensorflow" in sys.modules:
        return
    # Our own processes run Keras eagerly, fold weights and train test models: there a kernel that keeps the first
    # filter it saw answers wrong (ASSUME_FROZEN_ENV below). Only a serving process may have it, never ours.
    os.environ.pop(ASSUME_FROZEN_ENV, None)
    if os.environ.get(ENV) is None:
        os.environ[ENV] = "1"
        os.environ[_SET_HERE] = "1"


def state() -> dict:
    """What is in force in this process: the variable, who set it, and whether TensorFlow enabled oneDNN."""
    value = os.environ.get(ENV)
    if value is None:
        source = "TensorFlow's default for this CPU"
    elif os.environ.get(_SET_HERE) == "1" and value == "1":
        source = "set to 1 by tf-serving-gitops (the CPU targets' default)"
    else:
        source = "set in the environment"
    return {"variable": f"{ENV}={value if value is not None else '(unset)'}", "source": source,
            "enabled": enabled()}


def enabled() -> bool | None:
    """Whether TensorFlow itself reports oneDNN on (None when this TensorFlow cannot tell)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


# --- issue 16: run a child process under a CPU target's oneDNN settings ------------------------------------------
# tools.proc.run merges the environment it is given into this process's, so it cannot unset a variable. A child
# started with child_env() drops the variables listed in _UNSET before TensorFlow loads (apply_child_env()),
# which is how onednn: auto (TF_ENABLE_ONEDNN_OPTS unset: TensorFlow's own choice) reaches a child.
FPMATH_ENV = "TF_SET_ONEDNN_FPMATH_MODE"
# A CPU target's `math: bf16` is TF Serving's --mixed_precision=bfloat16, a grappler rewrite of the session's graphs
# (tools/grappler.py), not a variable TensorFlow reads. This variable carries it to the processes that validate or
# benchmark under the target's settings (ours alone; TensorFlow ignores it): with it set to "bfloat16", their calls
# of an export run with the same rewrite. TF_SET_ONEDNN_FPMATH_MODE stays listed so that a value left in the
# environment is dropped in those processes, as the serving container never sets it.
MIXED_PRECISION_ENV = "TFSG_MIXED_PRECISION"
MIXED_PRECISION = "bfloat16"  # the value of TF Serving's flag, and of this variable
# TensorFlow's oneDNN convolutions and matmuls keep their reordered filter across calls when it is a constant, and
# every filter when this is true (tensorflow/core/util/onednn_env_vars.cc `AreWeightsFrozen`, read once per
# process; kernels/mkl/mkl_conv_ops.cc, mkl_matmul_op_fused.cc). Right only where no kernel ever sees a second
# filter, as in TF Serving's sessions (variables restored once, never assigned); wrong in a process that runs Keras
# eagerly, assigns variables or trains (measured: docs/client-and-bench.md#considered-and-rejected-frozen-weights).
# A CPU target's `frozen_weights: true` renders it into its serving container (tools/config.py); our processes get
# it only as children started for such a target (validation: tools/validate/child.py, whose Keras references then
# go through a traced function, correctness.keras_outputs; the bench's "frozen" setting). Listed here so that every
# such child gets it exactly as asked, a stray value dropped.
ASSUME_FROZEN_ENV = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"
SETTINGS_VARS = (ENV, FPMATH_ENV, MIXED_PRECISION_ENV, ASSUME_FROZEN_ENV)
_UNSET = "_TFSG_UNSET_ENV"


def child_env(wanted: dict[str, str | None]) -> dict[str, str]:
    """An env for tools.proc.run giving a child exactly `wanted` for the oneDNN variables, and for any other variable
    it names (None: unset)."""
    env = {name: value for name, value in wanted.items() if value is not None}
    unset = [name for name in SETTINGS_VARS if wanted.get(name) is None]
    env[_UNSET] = ",".join(unset + [name for name, value in wanted.items() if value is None and name not in unset])
    env[_SET_HERE] = "0"
    return env


def apply_child_env() -> None:
    """In a child started with child_env(): drop the variables it must not see. Before TensorFlow loads."""
    for name in filter(None, os.environ.pop(_UNSET, "").split(",")):
        os.environ.pop(name, None)


def in_force() -> dict[str, str | None]:
    """The oneDNN variables of this process's environment (None: unset)."""
    return {name: os.environ.get(name) for name in SETTINGS_VARS}


def process_env(cpu_math) -> dict[str, str | None]:
    """Every variable of SETTINGS_VARS (None: unset) for a process that runs exports as a CPU target with these
    settings (tools.config.CpuMath) serves them: the container's environment, and a `math: bf16` target's rewrite as
    MIXED_PRECISION_ENV. What validation children (tools/validate/settings.py) and bench workers
    (tools/bench/onednn_compare.py) are started with."""
    bf16 = {MIXED_PRECISION_ENV: MIXED_PRECISION} if cpu_math.math == "bf16" else {}
    wanted = {**cpu_math.env(), **bf16}
    return {name: wanted.get(name) for name in SETTINGS_VARS}


def bf16() -> bool:
    """Whether this process runs exports as a `math: bf16` target serves them (grappler's bf16 rewrite)."""
    return os.environ.get(MIXED_PRECISION_ENV) == MIXED_PRECISION


def math() -> str:
    return "bf16" if bf16() else "fp32"
