"""Run the channels_first (NCHW) export on a CPU through grappler's CPU layout conversion.

Why: validation runs the GPU's export on this CPU. On CPUs without AVX-512 (measured on an AMD EPYC Zen 3) oneDNN
has no jit kernel for an NCHW Conv2D fused with its bias and falls back to its reference implementation
(`ONEDNN_VERBOSE=1`: `convolution,ref:any`, 0.9-14 s per convolution): one ResNet50 image took 125-437 s and
`make validate` did not finish in two hours. Asked to, grappler's generic layout optimizer rewrites a graph that
runs on a CPU from NCHW to NHWC, with transposes at the edges: the same export then ran at 0.11 s per image, every
convolution on oneDNN's jit kernels, answers identical to channels_last's.

Upstream (tensorflow/tensorflow):
- tensorflow/core/protobuf/rewriter_config.proto: `RewriterConfig.cpu_layout_conversion`, enum `CpuLayout`
  (NO_CONVERSION_ON_CPU is the default, NCHW_TO_NHWC the value used here).
- tensorflow/core/grappler/optimizers/generic_layout_optimizer.cc `GenericLayoutOptimizer::Optimize`: converts
  for kCPU only in the branch taken when the cluster has no GPU; with a GPU it lays out for the GPU as always.
- tensorflow/core/grappler/optimizers/meta_optimizer.cc: passes `cfg_.cpu_layout_conversion()` to the layout
  optimizer and the remapper, so the ConfigProto of a session or of a function call reaches it.

What it does not change: TF Serving on the GPU runs the NCHW graph with cuDNN (there is a GPU, so the CPU
conversion never applies there). No CPU validation could run the GPU's kernels; what it proves about
channels_first (signatures, request formats, warmup, answers beside channels_last's within tolerance) is a
property of the graph, which the rewrite keeps. The report says, per layout, that it ran this way.
"""
from __future__ import annotations

import functools

FIELD = "cpu_layout_conversion"
VALUE = "NCHW_TO_NHWC"
LAYOUT = "channels_first"
DESCRIPTION = (f"its NCHW ops ran as NHWC on this CPU (grappler rewrite_options {FIELD}: {VALUE}; the GPU runs "
               "them as NCHW with cuDNN)")


def figures(converted: bool) -> dict:
    """The report figure naming the conversion, for the layouts that ran with it (none for the others)."""
    return {FIELD: VALUE} if converted else {}


@functools.lru_cache(maxsize=1)
def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def applies(layout: str) -> bool:
    """Whether `layout` runs with the conversion here: the NCHW export, on a machine TensorFlow sees no GPU on."""
    return layout == LAYOUT and not _has_gpu()


def session_config() -> bytes:
    """A serialized ConfigProto for a C API session (TF_SetConfig) that runs NCHW graphs as NHWC on a CPU."""
    from tools import grappler

    return grappler.session_config(nchw_to_nhwc=True)


def python_calls():
    """Within it, this thread's tf.function calls (Python's loader's signatures) run with the conversion
    (tools/grappler.py python_calls)."""
    from tools import grappler

    return grappler.python_calls(nchw_to_nhwc=True)
