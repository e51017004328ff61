"""The grappler rewrites validation and the bench run an export's graphs with, as the serving side would.

Two, each a field of TensorFlow's RewriterConfig (tensorflow/tensorflow tensorflow/core/protobuf/rewriter_config.proto):
- `cpu_layout_conversion: NCHW_TO_NHWC`: the GPU's channels_first export run on this CPU
  (tools/validate/nchw_on_cpu.py).
- `auto_mixed_precision_onednn_bfloat16: ON`: a CPU target with `math: bf16`. TF Serving sets exactly this field when
  started with `--mixed_precision=bfloat16` (tensorflow/serving 2.20.0 tensorflow_serving/model_servers/main.cc
  flag `mixed_precision`; servables/tensorflow/saved_model_bundle_factory.cc `rwcfg->
  set_auto_mixed_precision_onednn_bfloat16(RewriterConfig::ON)` for the value "bfloat16"; g3doc/serving_config.md).
  Grappler then rewrites the convolutions, matmuls and what lies between them to bfloat16
  (tensorflow/core/grappler/optimizers/auto_mixed_precision.cc, BF16 mode: no CPU check of its own).

A session (TF Serving's C API load path) takes them in its ConfigProto; Python's tf.function calls take them from
the per-thread function call options, which every call sends to the runtime as its `config_proto` and grappler
optimizes the function with (tensorflow/python/eager/context.py `FunctionCallOptions`).
"""
from __future__ import annotations

import contextlib


def config(base: bytes | None = None, *, nchw_to_nhwc: bool = False, bf16: bool = False):
    """A ConfigProto (from `base`, serialized, if given) with the asked rewrites switched on."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

    proto = config_pb2.ConfigProto.FromString(base) if base else config_pb2.ConfigProto()
    rewrites = proto.graph_options.rewrite_options
    if nchw_to_nhwc:
        rewrites.cpu_layout_conversion = rewriter_config_pb2.RewriterConfig.NCHW_TO_NHWC
    if bf16:
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return proto


def session_config(*, nchw_to_nhwc: bool = False, bf16: bool = False) -> bytes | None:
    """A serialized ConfigProto for a C API session (TF_SetConfig); None when no rewrite is asked."""
    if not (nchw_to_nhwc or bf16):
        return None
    return config(nchw_to_nhwc=nchw_to_nhwc, bf16=bf16).SerializeToString()


@contextlib.contextmanager
def python_calls(*, nchw_to_nhwc: bool = False, bf16: bool = False):
    """Within it, this thread's tf.function calls run with the asked rewrites (nothing changes when none is).

    tf.config.optimizer.set_experimental_options would change the whole process, and has no switch for the layout
    conversion; the context's ConfigProto cannot change once eager execution started."""
    if not (nchw_to_nhwc or bf16):
        yield
        return
    from tensorflow.python.eager import context

    ctx = context.context()
    before = ctx.function_call_options
    ctx.function_call_options = context.FunctionCallOptions(
        executor_type=before.executor_type,
        config_proto=config(before.config_proto_serialized, nchw_to_nhwc=nchw_to_nhwc, bf16=bf16))
    try:
        yield
    finally:
        ctx.function_call_options = before
