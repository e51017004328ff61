"""Parse TF Serving's protobuf-text config files the way tensorflow_model_server does, without TF Serving.

ModelServerConfig comes from tensorflow-serving-api. BatchingParameters and MonitoringConfig are not in that
package, so their messages are declared here field for field from upstream
(tensorflow_serving/servables/tensorflow/session_bundle_config.proto, tensorflow_serving/config/
monitoring_config.proto): a misspelled or mistyped field fails here as it would fail the server at start.
"""
from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from google.protobuf.message import Message

_F = descriptor_pb2.FieldDescriptorProto

# (field, number, type, type_name or None, repeated)
_BATCHING_FIELDS = [
    ("max_batch_size", 1, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("num_batch_threads", 4, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
    ("allowed_batch_sizes", 6, _F.TYPE_INT64, None, True),
    ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, None, False),
]
_PROMETHEUS_FIELDS = [("enable", 1, _F.TYPE_BOOL, None, False), ("path", 2, _F.TYPE_STRING, None, False)]
_MONITORING_FIELDS = [("prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False)]


def _add_message(file: descriptor_pb2.FileDescriptorProto, name: str, fields: list) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, ftype, type_name, repeated in fields:
        field = message.field.add(name=field_name, number=number, type=ftype,
                                  label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name


@functools.lru_cache(maxsize=None)
def _mirrored(name: str) -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    mirror = descriptor_pb2.FileDescriptorProto(name="tf_serving_gitops/mirror.proto", package="tensorflow.serving",
                                                syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    _add_message(mirror, "BatchingParameters", _BATCHING_FIELDS)
    _add_message(mirror, "PrometheusConfig", _PROMETHEUS_FIELDS)
    _add_message(mirror, "MonitoringConfig", _MONITORING_FIELDS)
    pool.Add(mirror)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


def _parse(text: str, message: Message, what: str) -> Message:
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ValueError(f"{what} is not a valid {message.DESCRIPTOR.name}: {exc}") from None


def parse_model_server_config(text: str, what: str = "models.config") -> Message:
    from tensorflow_serving.config import model_server_config_pb2

    return _parse(text, model_server_config_pb2.ModelServerConfig(), what)


def parse_batching_parameters(text: str, what: str = "batching.config") -> Message:
    return _parse(text, _mirrored("BatchingParameters")(), what)


def parse_monitoring_config(text: str, what: str = "monitoring.config") -> Message:
    return _parse(text, _mirrored("MonitoringConfig")(), what)
