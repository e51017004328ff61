"""tools/validate/nchw_on_cpu.py in this process (the two loaders under it, oneDNN off: tests/validate/test_capi.py)."""
import pytest
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.eager import context

from tools.validate import nchw_on_cpu


def test_the_session_config_asks_grappler_for_nchw_to_nhwc():
    config = config_pb2.ConfigProto.FromString(nchw_on_cpu.session_config())
    assert config.graph_options.rewrite_options.cpu_layout_conversion == rewriter_config_pb2.RewriterConfig.NCHW_TO_NHWC


def test_only_channels_first_is_converted_and_only_without_a_gpu(monkeypatch):
    assert nchw_on_cpu.applies("channels_first") and not nchw_on_cpu.applies("channels_last")  # no GPU here
    monkeypatch.setattr(nchw_on_cpu, "_has_gpu", lambda: True)
    assert not nchw_on_cpu.applies("channels_first")


def test_python_calls_set_the_field_and_restore_the_options_even_on_error():
    ctx = context.context()
    before = ctx.function_call_options
    with pytest.raises(RuntimeError):
        with nchw_on_cpu.python_calls():
            inside = config_pb2.ConfigProto.FromString(ctx.function_call_options.config_proto_serialized)
            assert inside.graph_options.rewrite_options.cpu_layout_conversion == \
                rewriter_config_pb2.RewriterConfig.NCHW_TO_NHWC
            raise RuntimeError("boom")
    assert ctx.function_call_options is before
