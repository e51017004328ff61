"""TensorFlow Serving's Predict request and response formats, reproduced in Python.

What TF Serving does between the wire and a SavedModel signature, rule for rule, so that `tools validate`
can call an export exactly as the server will and the serving test double can answer as the server does.
Sources (tensorflow/serving at 9d981c5, 2026-07; tensorflow/tensorflow):
  REST  tensorflow_serving/util/json_tensor.cc (FillPredictRequestFromJson, MakeJsonFromTensors,
        MakeJsonFromStatus), model_servers/http_rest_api_handler.cc (GetInfoMap), http_server.cc (status codes)
  gRPC  tensorflow_serving/servables/tensorflow/predict_util.cc (RunPredict, VerifyRequestInputsSize),
        tensorflow/cc/saved_model/util.cc (GetInputValues), Tensor::AsProtoField for the response

Server side, what TF Serving does with a request:

    signatures = load_signatures(version_dir)            # {name: SignatureInfo} from saved_model.pb, tag serve
    req = parse_rest_request(body, signatures)            # REST body -> RestRequest(signature_name, inputs, row_format)
    name, inputs = predict_request_inputs(proto, signatures)   # gRPC PredictRequest -> (signature name, inputs)
    outputs = {k: v.numpy() for k, v in loaded.signatures[name](**inputs).items()}
    body = format_rest_response(outputs, req.row_format)  # {"predictions": [...]} or {"outputs": ...}
    proto = make_predict_response(outputs, model_name, name, version)
    except ServingError as e: e.to_json(), e.http_status, e.grpc_code   # {"error": "..."}
    except tf.errors.OpError as e: error_from_tf(e)       # what the server answers for a graph error

Client side, what a client sends and reads:

    rest_request_body(images, signature_name=..., row_format=True)  -> dict to json.dumps
    parse_rest_response(text, dtypes)                     -> {output: np.ndarray}  (raises ServingError on "error")
    make_predict_request(model_name, {"images": images}, signature_name)  -> PredictRequest
    predict_response_outputs(response)                    -> {output: np.ndarray}  (tf.make_ndarray)

Inputs are numpy arrays: string tensors are object arrays of `bytes`. Where TF Serving's own message is
known it is reproduced word for word, because clients and tests match on it.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_SIGNATURE = "serving_default"  # tensorflow::kDefaultServingSignatureDefKey
PREDICT_METHOD = "tensorflow/serving/predict"
_METHODS = (PREDICT_METHOD, "tensorflow/serving/classify", "tensorflow/serving/regress")
BYTES_SUFFIX = "_bytes"  # output names ending so are written as {"b64": ...} in REST responses
_MAX_DEBUG_CHARS = 256  # kMaxJsonDebugStringBytes

# absl::StatusCode -> HTTP status, as tensorflow_serving/model_servers/http_server.cc maps them.
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request TF Serving refuses: `code` is the canonical status name (INVALID_ARGUMENT, ...)."""

    def __init__(self, code: str, message: str):
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code, self.message = code, message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def grpc_code(self):
        import grpc

        return grpc.StatusCode[self.code]

    def to_json(self) -> str:
        """The REST error body (MakeJsonFromStatus)."""
        return _Writer().object_pretty([("error", _json_string(self.message))], 0)


def _invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


# ---------------------------------------------------------------------------------------------- signatures

@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: its graph tensor name, dtype (tf.DType) and shape (None: unknown rank)."""

    name: str
    dtype: Any  # None for DT_INVALID
    shape: tuple | None


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    method_name: str
    inputs: dict[str, TensorInfo] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)
    defaults: tuple[str, ...] = ()  # input aliases with a default value in the SignatureDef


def _tensor_info(info) -> TensorInfo:
    import tensorflow as tf

    shape = None if info.tensor_shape.unknown_rank else tuple(
        None if d.size < 0 else d.size for d in info.tensor_shape.dim)
    # DT_INVALID (0) marks a TensorInfo that is not a dense tensor, e.g. the __saved_model_init_op output.
    return TensorInfo(name=info.name, dtype=tf.as_dtype(info.dtype) if info.dtype else None, shape=shape)


def signature_map(meta_graph_def) -> dict[str, SignatureInfo]:
    """Every SignatureDef of a MetaGraphDef (the TensorInfo maps TF Serving reads), by signature name."""
    return {
        name: SignatureInfo(
            name=name,
            method_name=sig.method_name,
            inputs={k: _tensor_info(v) for k, v in sig.inputs.items()},
            outputs={k: _tensor_info(v) for k, v in sig.outputs.items()},
            defaults=tuple(sorted(sig.defaults.keys())) if hasattr(sig, "defaults") else (),
        )
        for name, sig in meta_graph_def.signature_def.items()
    }


def read_meta_graph(version_dir: str | Path, tags: Sequence[str] = ("serve",)):
    """The MetaGraphDef of saved_model.pb whose tag set equals `tags`, as TF Serving's loader picks it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    raise ServingError("NOT_FOUND", "Could not find meta graph def matching supplied tags: { "
                       + " ".join(tags) + " }. To inspect available tag-sets in the SavedModel, please use the "
                       "SavedModel CLI: `saved_model_cli`")


def load_signatures(version_dir: str | Path) -> dict[str, SignatureInfo]:
    """signature_map of the `serve` meta graph of an exported version directory."""
    return signature_map(read_meta_graph(version_dir))


# ------------------------------------------------------------------------------------------ shared checks

def _dtype_name(dtype) -> str:
    """DataTypeString(): the names TF Serving prints (float, double, int64, string, ...)."""
    names = {"float32": "float", "float64": "double", "float16": "half"}
    return names.get(dtype.name, dtype.name)


def _shape_text(shape) -> str:
    if shape is None:
        return "[?]"
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


def as_input_array(value: Any) -> np.ndarray:
    """A request value as numpy: string tensors become object arrays of bytes (never numpy's fixed-width
    bytes, which would drop trailing NUL bytes of an image)."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bytes, str)) for v in value):
        arr = np.empty(len(value), dtype=object)
        arr[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in value]
        return arr
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind == "U":
        arr = np.vectorize(lambda v: v.encode("utf-8"), otypes=[object])(arr)
    elif arr.dtype.kind == "S":
        arr = arr.astype(object)
    return arr


def check_inputs(signature: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What RunPredict refuses before and while running the graph: wrong number of inputs, a missing or
    unknown alias, a dtype or shape the signature does not take. Returns the inputs as arrays."""
    import tensorflow as tf

    if signature.method_name not in _METHODS:
        raise ServingError("INTERNAL", "Expected prediction signature method_name to be one of {"
                           + ", ".join(_METHODS) + "}. Was: " + signature.method_name)
    sent, expected = set(inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
    for alias in sorted(expected):
        if alias not in sent and alias not in signature.defaults:
            raise _invalid(
                f"Signature input alias: {alias}(feed name: {signature.inputs[alias].name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request {{{','.join(sorted(sent))}}}, "
                f"or default input alias set: {','.join(signature.defaults)}")
    if sent - expected:
        raise _invalid(f"Inputs contains invalid name. Used request inputs: {','.join(sorted(sent & expected))}, "
                       f"request input: {','.join(sorted(sent))}")
    arrays = {}
    for index, alias in enumerate(sorted(sent)):
        info = signature.inputs[alias]
        arr = as_input_array(inputs[alias])
        got = tf.string if arr.dtype == object else tf.as_dtype(arr.dtype)
        if got != info.dtype:
            # The session's own words when a feed has the wrong type.
            raise _invalid(f"Expects arg[{index}] to be {_dtype_name(info.dtype)} but {_dtype_name(got)} is provided")
        if info.shape is not None and (
            arr.ndim != len(info.shape) or any(d is not None and d != n for d, n in zip(info.shape, arr.shape))
        ):
            raise _invalid(f"input '{alias}' has shape {_shape_text(arr.shape)} but signature "
                           f"'{signature.name}' takes {_shape_text(info.shape)}")
        arrays[alias] = arr
    return arrays


# ---------------------------------------------------------------------------------------------- REST in

@dataclass
class RestRequest:
    signature_name: str  # resolved: serving_default when the body names none
    inputs: dict[str, np.ndarray]
    row_format: bool  # True for "instances", False for "inputs"; the response follows the request


def _debug(value: Any) -> str:
    """JsonValueToDebugString: the value as one line of JSON, cut at 256 bytes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:_MAX_DEBUG_CHARS]


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


_B64_CHARS = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _b64decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    text = value["b64"]
    # absl::Base64Unescape takes padded or unpadded standard base64 and nothing else.
    stripped = text.rstrip("=")
    if not _B64_CHARS.match(text) or len(stripped) % 4 == 1 or len(text) - len(stripped) > 2:
        raise _invalid("Unable to base64 decode")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


_INT_RANGES = {
    "int8": (-2 ** 31, 2 ** 31 - 1), "int16": (-2 ** 31, 2 ** 31 - 1), "int32": (-2 ** 31, 2 ** 31 - 1),
    "uint8": (-2 ** 31, 2 ** 31 - 1),  # rapidjson IsInt(): TF Serving checks only that it fits an int
    "int64": (-2 ** 63, 2 ** 63 - 1), "uint32": (0, 2 ** 32 - 1), "uint64": (0, 2 ** 64 - 1),
}


def _value(val: Any, dtype) -> Any:
    """AddValueToTensor: one JSON scalar as a value of dtype, or TF Serving's type error."""
    name = dtype.name
    type_error = _invalid(f"JSON Value: {_debug(val)} Type: {_json_type(val)} is not of expected type: "
                          f"{_dtype_name(dtype)}")
    if name in ("float32", "float64"):
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise type_error
        return float(val)
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        if isinstance(val, bool) or not isinstance(val, int) or not low <= val <= high:
            raise type_error
        return val
    if name == "bool":
        if not isinstance(val, bool):
            raise type_error
        return val
    if name == "string":
        if not isinstance(val, str):
            raise type_error
        return val.encode("utf-8", "surrogateescape")
    raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {_debug(val)} to type: {_dtype_name(dtype)}")


def _dense_shape(val: Any) -> list[int]:
    """GetDenseTensorShape: sizes along the first element of every nesting level."""
    shape = []
    while isinstance(val, list):
        shape.append(len(val))
        if not val:
            break
        val = val[0]
    return shape


def _fill(val: Any, level: int, shape: list[int], dtype, out: list) -> None:
    """FillTensorProto: every leaf at the same depth, every list the size its level promised."""
    rank = len(shape)
    if not isinstance(val, list):
        if level != rank:
            raise _invalid(f"JSON Value: {_debug(val)} found at incorrect level: {level + 1} in the JSON DOM. "
                           f"Expected at level: {rank}")
        if isinstance(val, dict):
            if dtype.name != "string":
                raise _invalid(f"JSON Value: {_debug(val)} Type: Object is not of expected type: "
                               f"{_dtype_name(dtype)}")
            out.append(_b64decode(val))
        else:
            out.append(_value(val, dtype))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(val) != shape[level]:
        raise _invalid(f"Encountered list at unexpected size: {len(val)} at level: {level} "
                       f"expected size: {shape[level]}")
    for item in val:
        _fill(item, level + 1, shape, dtype, out)


def _tensor(val: Any, dtype) -> tuple[list[int], list]:
    shape = _dense_shape(val)
    values: list = []
    _fill(val, 0, shape, dtype, values)
    return shape, values


def _array(shape: list[int], values: list, dtype) -> np.ndarray:
    if dtype.name == "string":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
    else:
        arr = np.asarray(values, dtype=dtype.as_numpy_dtype)
    return arr.reshape(shape)


def _status_text(error: ServingError) -> str:
    return f"{error.code}: {error.message}"


def _from_instances(doc: dict, instances: Any, infos: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList."""
    if not isinstance(instances, list):
        raise _invalid(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
    if not instances:
        raise _invalid(f"JSON Value: {_debug(doc)} No values in 'instances' array")
    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple input tensors "
                       "required as per tensorinfo_map")

    def is_element_object(v):
        return isinstance(v, dict) and not _is_b64(v)

    by_object = is_element_object(instances[0])
    names = sorted(infos)
    shapes: dict[str, list[int]] = {}
    values: dict[str, list] = {}

    def add(item, name):  # AddInstanceItem
        if name not in infos:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape, vals = _tensor(item, infos[name].dtype)
        if name not in shapes:
            shapes[name] = shape
        elif len(vals) != math.prod(shapes[name]):
            raise _invalid(f"Expecting tensor size: {math.prod(shapes[name])} but got: {len(vals)}")
        elif shape != shapes[name]:
            raise _invalid(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(shape)}")
        values.setdefault(name, []).extend(vals)

    for index, element in enumerate(instances):
        if by_object:
            if not is_element_object(element):
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as exc:
                    raise _invalid(f"Failed to process element: {index} key: {name} of 'instances' list. "
                                   f"Error: {_status_text(exc)}") from None
            if set(element) != set(names):
                raise _invalid(f"Failed to process element: {index} of 'instances' list. JSON object: "
                               f"{_debug(element)} keys must be equal to: {','.join(names)}")
        else:
            if is_element_object(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                add(element, names[0])
            except ServingError as exc:
                raise _invalid(f"Failed to process element: {index} of 'instances' list. "
                               f"Error: {_status_text(exc)}") from None
    return {name: _array([len(instances)] + shapes[name], values[name], infos[name].dtype) for name in values}


def _from_inputs(value: Any, infos: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap: one tensor, or an object with every named input (extra keys ignored)."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple input tensors "
                           "required as per tensorinfo_map")
        name = sorted(infos)[0]
        shape, vals = _tensor(value, infos[name].dtype)
        return {name: _array(shape, vals, infos[name].dtype)}
    arrays = {}
    for name in sorted(infos):
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        shape, vals = _tensor(value[name], infos[name].dtype)
        arrays[name] = _array(shape, vals, infos[name].dtype)
    return arrays


def _parse_json(body: str | bytes) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "surrogateescape")
    text = body.lstrip(" \t\r\n")
    if not text:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        # rapidjson runs with kParseStopWhenDoneFlag: whatever follows the first complete value is ignored.
        doc, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        raise _invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos + len(body) - len(text)}") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def parse_rest_request(body: str | bytes | Mapping, signatures: Mapping[str, SignatureInfo]) -> RestRequest:
    """A REST :predict body -> RestRequest, by FillPredictRequestFromJson's rules, then RunPredict's input
    checks. `body` is the JSON text (or an already decoded dict); raises ServingError as TF Serving answers."""
    doc = dict(body) if isinstance(body, Mapping) else _parse_json(body)
    requested = doc.get("signature_name", "")
    if not isinstance(requested, str):
        raise _invalid(f"JSON Value: {_debug(doc)} not formatted correctly. 'signature_name' key must be a "
                       "string value.")
    name = requested or DEFAULT_SIGNATURE
    if name not in signatures:
        raise _invalid(f'Serving signature name: "{name}" not found in signature def')
    signature = signatures[name]
    if not signature.inputs:
        raise _invalid(f"Failed to get input map for signature: {requested or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise _invalid(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of 'inputs' or "
                           "'instances' keys to exist ")
        inputs, row = _from_instances(doc, doc["instances"], signature.inputs), True
    elif "inputs" in doc:
        inputs, row = _from_inputs(doc["inputs"], signature.inputs), False
    else:
        raise _invalid("Missing 'inputs' or 'instances' key")
    return RestRequest(signature_name=name, inputs=check_inputs(signature, inputs), row_format=row)


# ---------------------------------------------------------------------------------------------- REST out

def float_text(value: float, dtype: str = "float32") -> str:
    """WriteDecimal: six significant digits when they read back to the same number, else max_digits10."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    cast = np.float32 if dtype == "float32" else np.float64
    text = f"{value:.6g}"
    if cast(text) != cast(value):
        text = f"{value:.{9 if dtype == 'float32' else 17}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Writer:
    """The layout of rapidjson's PrettyWriter as TF Serving configures it: objects one key per line with
    four-space indents, tensor values as single-line arrays."""

    def object_pretty(self, items: list[tuple[str, str]], indent: int) -> str:
        if not items:
            return "{}"
        pad, inner = " " * indent, " " * (indent + 4)
        body = ",\n".join(f"{inner}{_json_string(k)}: {v}" for k, v in items)
        return "{\n" + body + "\n" + pad + "}"

    def array_pretty(self, items: list[str], indent: int) -> str:
        if not items:
            return "[]"
        pad, inner = " " * indent, " " * (indent + 4)
        return "[\n" + ",\n".join(inner + i for i in items) + "\n" + pad + "]"


def _scalar_text(value: Any, dtype: np.dtype, as_bytes: bool) -> str:
    if dtype == object or dtype.kind in "SU":
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        if as_bytes:
            return '{"b64": ' + _json_string(base64.b64encode(data).decode("ascii")) + "}"
        # rapidjson writes the raw bytes; bytes that are not UTF-8 would make the JSON invalid there.
        return _json_string(data.decode("utf-8", "replace"))
    if dtype.kind == "f":
        return float_text(value, "float32" if dtype.itemsize <= 4 else "float64")
    if dtype.kind == "b":
        return "true" if value else "false"
    if dtype.kind in "iu":
        return str(int(value))
    raise _invalid(f"Failed to write JSON value for tensor type: {dtype}")


def _values_text(arr: np.ndarray, as_bytes: bool) -> str:
    """AddTensorValues: a scalar as itself, a tensor as nested single-line arrays."""
    if arr.ndim == 0:
        return _scalar_text(arr[()], arr.dtype, as_bytes)
    # arr[i, ...] keeps a 0-d array (and its dtype) where arr[i] would give a bare Python object.
    return "[" + ", ".join(_values_text(arr[i, ...], as_bytes) for i in range(arr.shape[0])) + "]"


def _output_arrays(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name in sorted(outputs):
        value = outputs[name]
        arrays[name] = as_input_array(value)
    return arrays


def format_rest_response(outputs: Mapping[str, Any], row_format: bool) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} for a row-format request (one object per instance when there
    are several outputs), {"outputs": ...} for a columnar one. Keys in sorted order (TF Serving's map order is
    unspecified). String outputs named *_bytes are written as {"b64": ...}."""
    arrays = _output_arrays(outputs)
    if not arrays:
        raise _invalid("Cannot convert empty tensor map to JSON")
    w = _Writer()
    if not row_format:
        if len(arrays) == 1:
            ((name, arr),) = arrays.items()
            return w.object_pretty([("outputs", _values_text(arr, name.endswith(BYTES_SUFFIX)))], 0)
        inner = [(n, _values_text(a, n.endswith(BYTES_SUFFIX))) for n, a in arrays.items()]
        return w.object_pretty([("outputs", w.object_pretty(inner, 4))], 0)
    batch = -1
    for name, arr in arrays.items():
        if arr.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and arr.shape[0] != batch:
            raise _invalid(f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    items = []
    for i in range(batch):
        if len(arrays) > 1:
            fields = [(n, _values_text(a[i, ...], n.endswith(BYTES_SUFFIX))) for n, a in arrays.items()]
            items.append(w.object_pretty(fields, 8))
        else:
            ((name, arr),) = arrays.items()
            items.append(_values_text(arr[i, ...], name.endswith(BYTES_SUFFIX)))
    return w.object_pretty([("predictions", w.array_pretty(items, 4))], 0)


def error_from_tf(exc: Exception) -> ServingError:
    """The status TF Serving answers when the graph fails: the op error's code and its C++ message (without
    the Python traceback header `Graph execution error: ... Detected at node ...`)."""
    import tensorflow as tf

    if not isinstance(exc, tf.errors.OpError):
        return ServingError("INTERNAL", str(exc))
    code = _CANONICAL_CODES[exc.error_code] if 0 <= exc.error_code < len(_CANONICAL_CODES) else "UNKNOWN"
    return ServingError(code, error_summary(exc.message))


# absl::StatusCode values 0..16 in order.
_CANONICAL_CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)


def error_summary(message: str) -> str:
    """The line of a TensorFlow error message that names the problem, without the Python-side framing
    (`Graph execution error`, `Detected at node`, `[[{{node ...}}]]`, `{{function_node ...}}`, `[Op:...]`)."""
    lines = [ln.strip() for ln in str(message).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith(
        ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[", "File \""))]
    text = useful[-1] if useful else str(message).strip()
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[\[\{\{node .*$", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", text).strip()


# ---------------------------------------------------------------------------------------------- REST client

def rest_request_body(images: Sequence[bytes], signature_name: str | None = None, row_format: bool = True,
                      input_key: str | None = None) -> dict:
    """A :predict body sending encoded images as {"b64": ...}: row format `{"instances": [...]}` or columnar
    `{"inputs": [...]}`; with input_key, the named form (`[{"images": {"b64": ...}}]` / `{"images": [...]}`)."""
    encoded = [{"b64": base64.b64encode(img).decode("ascii")} for img in images]
    body: dict = {}
    if signature_name is not None:
        body["signature_name"] = signature_name
    if row_format:
        body["instances"] = [{input_key: e} for e in encoded] if input_key else encoded
    else:
        body["inputs"] = {input_key: encoded} if input_key else encoded
    return body


def _decode_json_value(value: Any) -> Any:
    if _is_b64(value):
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [_decode_json_value(v) for v in value]
    return value


def _to_array(value: Any, dtype=None) -> np.ndarray:
    value = _decode_json_value(value)
    probe = value
    while isinstance(probe, list) and probe:
        probe = probe[0]
    if isinstance(probe, bytes):
        return np.array(value, dtype=object)
    return np.asarray(value, dtype=dtype)


def parse_rest_response(text: str | bytes, dtypes: Mapping[str, Any] | None = None,
                        single_output: str = "output") -> dict[str, np.ndarray]:
    """A :predict response body -> {output name: array}. Raises ServingError for an {"error": ...} body.
    JSON has no dtypes: pass `dtypes` ({name: numpy dtype}) to get e.g. float32 back; strings and b64 come back
    as bytes. A response with a single unnamed output is returned under `single_output`."""
    doc = json.loads(text)
    dtypes = dict(dtypes or {})
    if "error" in doc:
        raise ServingError("UNKNOWN", str(doc["error"]))
    if "predictions" in doc:
        rows = doc["predictions"]
        if not rows:
            # An empty batch answers {"predictions": []}: the output names are gone.
            return {n: np.zeros((0,), dtype=d) for n, d in dtypes.items()}
        if rows and all(isinstance(r, dict) and not _is_b64(r) for r in rows):
            names = sorted(rows[0])
            return {n: _to_array([r[n] for r in rows], dtypes.get(n)) for n in names}
        return {single_output: _to_array(rows, dtypes.get(single_output))}
    if "outputs" in doc:
        outs = doc["outputs"]
        if isinstance(outs, dict) and not _is_b64(outs):
            return {n: _to_array(v, dtypes.get(n)) for n, v in sorted(outs.items())}
        return {single_output: _to_array(outs, dtypes.get(single_output))}
    raise ValueError("response has none of 'predictions', 'outputs', 'error'")


# ---------------------------------------------------------------------------------------------- gRPC

def make_predict_request(model_name: str, inputs: Mapping[str, Any], signature_name: str = DEFAULT_SIGNATURE,
                         version: int | None = None):
    """A tensorflow_serving.apis PredictRequest; a list of bytes becomes a 1-D string tensor (tf.make_tensor_proto)."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name,
                                                                        signature_name=signature_name))
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)) and all(isinstance(v, bytes) for v in value):
            proto = tf.make_tensor_proto(list(value), dtype=tf.string, shape=[len(value)])
        else:
            proto = tf.make_tensor_proto(value)
        request.inputs[name].CopyFrom(proto)
    return request


def predict_request_inputs(request, signatures: Mapping[str, SignatureInfo]) -> tuple[str, dict[str, np.ndarray]]:
    """RunPredict's handling of a PredictRequest: (signature name, input arrays), or ServingError."""
    import tensorflow as tf

    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if name not in signatures:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
    arrays = {}
    for alias, proto in request.inputs.items():
        try:
            arrays[alias] = tf.make_ndarray(proto)
        except Exception:  # a malformed TensorProto: Tensor::FromProto fails
            raise _invalid(f"tensor parsing error: {alias}") from None
    return name, check_inputs(signatures[name], arrays)


_PROTO_FIELDS = {
    "float32": "float_val", "float64": "double_val", "int32": "int_val", "int16": "int_val", "int8": "int_val",
    "uint8": "int_val", "uint16": "int_val", "int64": "int64_val", "bool": "bool_val", "uint32": "uint32_val",
    "uint64": "uint64_val",
}


def tensor_proto(value: Any):
    """A TensorProto as TF Serving's response holds it (Tensor::AsProtoField): the typed repeated field
    (float_val, int64_val, string_val, ...), never tensor_content, so clients reading float_val work."""
    import tensorflow as tf

    arr = as_input_array(value)
    if arr.dtype == object:
        return tf.make_tensor_proto(arr, dtype=tf.string)
    proto = tf.make_tensor_proto(arr)
    field_name = _PROTO_FIELDS.get(arr.dtype.name)
    if field_name and proto.tensor_content:
        proto.ClearField("tensor_content")
        getattr(proto, field_name).extend(arr.ravel().tolist())
    return proto


def make_predict_response(outputs: Mapping[str, Any], model_name: str, signature_name: str,
                          version: int | None = None):
    """A PredictResponse as RunPredict fills it: model_spec (name, signature, version) and every output."""
    from tensorflow_serving.apis import model_pb2, predict_pb2

    response = predict_pb2.PredictResponse(model_spec=model_pb2.ModelSpec(name=model_name,
                                                                          signature_name=signature_name))
    if version is not None:
        response.model_spec.version.value = version
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tensor_proto(value))
    return response


def predict_response_outputs(response) -> dict[str, np.ndarray]:
    """{output name: array} of a PredictResponse (tf.make_ndarray)."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
