"""Turn TensorFlow's oneDNN kernels on before TensorFlow starts, so a channels_first (NCHW) graph runs on any
x86 CPU, and say afterwards what was in force.

Why: TensorFlow's stock CPU kernels run Conv2D only in NHWC ("The Conv2D op currently only supports the NHWC
tensor format on the CPU"); its oneDNN kernels run NCHW too. TensorFlow turns oneDNN on by default only on
some Intel CPUs (AVX512-VNNI/BF16, AMX; tensorflow/core/util/util.cc `IsMKLEnabled`), so without this an AMD
EPYC without AVX-512 cannot execute the GPU export at all. The switch is the environment variable
TF_ENABLE_ONEDNN_OPTS, read once, when TensorFlow first asks; so `prepare()` must run before the first
`import tensorflow` of the process (tools/__main__.py, export/__main__.py and tests/conftest.py call it).

An explicit TF_ENABLE_ONEDNN_OPTS=0 in the environment is the user's choice and is kept: validation then
reports the channels_first checks as not run, naming this variable, instead of pretending.
"""
from __future__ import annotations

import os
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"
_SET_HERE = "_TFSG_ONEDNN_SET_HERE"  # marks, for child processes too, that the value came from prepare()


def prepare() -> None:
    """Set TF_ENABLE_ONEDNN_OPTS=1 unless the environment already says something. No-op once TF is loaded."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get(ENV) is None:
        os.environ[ENV] = "1"
        os.environ[_SET_HERE] = "1"


def state() -> dict:
    """What is in force in this process: the variable, who set it, and whether TensorFlow enabled oneDNN."""
    value = os.environ.get(ENV)
    if value is None:
        source = "TensorFlow's default for this CPU"
    elif os.environ.get(_SET_HERE) == "1" and value == "1":
        source = "set to 1 by tf-serving-gitops (NCHW convolutions on a CPU need oneDNN)"
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
