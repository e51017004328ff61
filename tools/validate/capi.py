"""TF Serving's load-and-run path, driven from Python: TensorFlow's C API over ctypes.

TF Serving does not load a SavedModel with Python's object loader (`tf.saved_model.load`, which rebuilds
tf.functions from the object graph). It calls the C++ `LoadSavedModel` (tensorflow_serving/servables/
tensorflow/saved_model_bundle_factory.cc -> tensorflow/cc/saved_model/loader.cc: import the MetaGraphDef of the
`serve` tag, restore the variables, run the init op with the asset files fed) and answers a Predict with
`Session::Run` on the tensor names the SignatureDef lists (tensorflow_serving/servables/tensorflow/
predict_util.cc). The pinned tensorflow wheel's `libtensorflow_cc.so.2` exports that exact code behind the C
API: `TF_LoadSessionFromSavedModel` calls `tensorflow::LoadSavedModel` (tensorflow/c/c_api.cc) and
`TF_SessionRun` calls `Session::Run`.

Why ctypes and not a compiled helper: nothing to build, so it works wherever the wheel is installed (no
compiler, no headers at run time), and every symbol is bound by name at start-up, so a wheel without one is a
one-line error naming it. The only layout this module must know is TF_TString's, and the wheel exports the
accessors (`TF_StringInit`, `TF_StringCopy`, `TF_StringGetDataPointer`, `TF_StringGetSize`,
`TF_StringDealloc`; tensorflow/c/tf_tstring.h), so only its size (24 bytes, ctstring_internal.h) is assumed.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

LIBRARY = "libtensorflow_cc.so.2"
TSTRING_SIZE = 24  # sizeof(TF_TString): tensorflow/tsl/platform/ctstring_internal.h (TF_TString_Union)

# TF_DataType values: tensorflow/c/tf_datatype.h
TF_FLOAT, TF_DOUBLE, TF_INT32, TF_UINT8, TF_STRING, TF_INT64, TF_BOOL = 1, 2, 3, 4, 7, 9, 10
_NUMPY = {TF_FLOAT: np.float32, TF_DOUBLE: np.float64, TF_INT32: np.int32, TF_UINT8: np.uint8,
          TF_INT64: np.int64, TF_BOOL: np.bool_}
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY.items()}

# TF_Code values (tensorflow/c/tf_status.h) -> the canonical names TF Serving puts in its error answers.
CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
         6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
         10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
         15: "DATA_LOSS", 16: "UNAUTHENTICATED"}


class CApiError(Exception):
    """A TF_Status that is not OK: its canonical code and TensorFlow's message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class CApiUnavailable(Exception):
    """The library or one of its symbols is missing: the C API path cannot run here."""


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("data_deallocator", ctypes.c_void_p)]


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


_P = ctypes.c_void_p
# name -> (restype, argtypes); every function this module calls, bound (and so checked) at start-up.
SIGNATURES: dict[str, tuple] = {
    "TF_Version": (ctypes.c_char_p, []),
    "TF_NewStatus": (_P, []),
    "TF_DeleteStatus": (None, [_P]),
    "TF_GetCode": (ctypes.c_int, [_P]),
    "TF_Message": (ctypes.c_char_p, [_P]),
    "TF_NewBuffer": (ctypes.POINTER(_Buffer), []),
    "TF_DeleteBuffer": (None, [ctypes.POINTER(_Buffer)]),
    "TF_NewGraph": (_P, []),
    "TF_DeleteGraph": (None, [_P]),
    "TF_GraphOperationByName": (_P, [_P, ctypes.c_char_p]),
    "TF_NewSessionOptions": (_P, []),
    "TF_DeleteSessionOptions": (None, [_P]),
    "TF_SetConfig": (None, [_P, ctypes.c_void_p, ctypes.c_size_t, _P]),
    "TF_LoadSessionFromSavedModel": (_P, [_P, ctypes.POINTER(_Buffer), ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, _P,
                                          ctypes.POINTER(_Buffer), _P]),
    "TF_SessionRun": (None, [_P, ctypes.POINTER(_Buffer), ctypes.POINTER(_Output), ctypes.POINTER(_P), ctypes.c_int,
                             ctypes.POINTER(_Output), ctypes.POINTER(_P), ctypes.c_int, ctypes.POINTER(_P),
                             ctypes.c_int, ctypes.POINTER(_Buffer), _P]),
    "TF_CloseSession": (None, [_P, _P]),
    "TF_DeleteSession": (None, [_P, _P]),
    "TF_AllocateTensor": (_P, [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_size_t]),
    "TF_DeleteTensor": (None, [_P]),
    "TF_TensorType": (ctypes.c_int, [_P]),
    "TF_NumDims": (ctypes.c_int, [_P]),
    "TF_Dim": (ctypes.c_int64, [_P, ctypes.c_int]),
    "TF_TensorData": (_P, [_P]),
    "TF_TensorByteSize": (ctypes.c_size_t, [_P]),
    "TF_TensorElementCount": (ctypes.c_int64, [_P]),
    "TF_StringInit": (None, [_P]),
    "TF_StringCopy": (None, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "TF_StringGetDataPointer": (_P, [_P]),
    "TF_StringGetSize": (ctypes.c_size_t, [_P]),
    "TF_StringDealloc": (None, [_P]),
}


def library_path() -> Path:
    """The C API library of the installed tensorflow wheel (the one the Python package itself runs on)."""
    import tensorflow as tf

    path = Path(tf.__file__).resolve().parent / LIBRARY
    if not path.is_file():
        raise CApiUnavailable(f"TensorFlow's C API library {LIBRARY} is not in {path.parent}")
    return path


class Library:
    """The C API functions, bound by name. Raises CApiUnavailable naming the first missing symbol."""

    def __init__(self, path: str | Path | None = None, symbols: Mapping[str, tuple] = SIGNATURES):
        path = Path(path) if path is not None else library_path()
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise CApiUnavailable(f"cannot open TensorFlow's C API library {path}: {exc}") from None
        for name, (restype, argtypes) in symbols.items():
            try:
                fn = getattr(self._lib, name)
            except AttributeError:
                raise CApiUnavailable(f"TensorFlow's C API library {path.name} has no symbol {name}: "
                                      "the TF Serving load path cannot be exercised with this TensorFlow") from None
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        self.path = path

    def check(self, status) -> None:
        code = self.TF_GetCode(status)
        if code != 0:
            raise CApiError(CODES.get(code, f"CODE_{code}"), (self.TF_Message(status) or b"").decode("utf-8", "replace"))


_LIBRARY: Library | None = None


def library() -> Library:
    """The process-wide binding (loading the library twice would be harmless but pointless)."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = Library()
    return _LIBRARY


# ------------------------------------------------------------------------------------------ tensors

def _dims(shape: Sequence[int]):
    arr = (ctypes.c_int64 * len(shape))(*shape)
    return arr, len(shape)


def to_tensor(lib: Library, value) -> int:
    """A new TF_Tensor holding `value` (a numpy array; object/bytes arrays become TF_STRING). Caller deletes it."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        flat = [v if isinstance(v, bytes) else str(v).encode() for v in arr.reshape(-1).tolist()]
        dims, ndims = _dims(arr.shape)
        tensor = lib.TF_AllocateTensor(TF_STRING, dims, ndims, TSTRING_SIZE * len(flat))
        if not tensor:
            raise CApiError("RESOURCE_EXHAUSTED", "TF_AllocateTensor returned nothing")
        base = lib.TF_TensorData(tensor)
        for i, item in enumerate(flat):
            slot = base + i * TSTRING_SIZE
            lib.TF_StringInit(slot)
            lib.TF_StringCopy(slot, item, len(item))  # TF owns the copy; TF_DeleteTensor frees it
        return tensor
    if arr.dtype not in _FROM_NUMPY:
        raise TypeError(f"no TF_DataType for numpy {arr.dtype}")
    arr = np.ascontiguousarray(arr)
    dims, ndims = _dims(arr.shape)
    tensor = lib.TF_AllocateTensor(_FROM_NUMPY[arr.dtype], dims, ndims, arr.nbytes)
    if not tensor:
        raise CApiError("RESOURCE_EXHAUSTED", "TF_AllocateTensor returned nothing")
    if arr.nbytes:
        ctypes.memmove(lib.TF_TensorData(tensor), arr.ctypes.data, arr.nbytes)
    return tensor


def from_tensor(lib: Library, tensor) -> np.ndarray:
    """A numpy copy of a TF_Tensor (TF_STRING as an object array of bytes). Does not delete it."""
    shape = tuple(lib.TF_Dim(tensor, i) for i in range(lib.TF_NumDims(tensor)))
    dtype = lib.TF_TensorType(tensor)
    data = lib.TF_TensorData(tensor)
    if dtype == TF_STRING:
        n = int(lib.TF_TensorElementCount(tensor))
        items = []
        for i in range(n):
            slot = data + i * TSTRING_SIZE
            size = lib.TF_StringGetSize(slot)
            items.append(ctypes.string_at(lib.TF_StringGetDataPointer(slot), size) if size else b"")
        out = np.empty(n, dtype=object)
        out[:] = items
        return out.reshape(shape)
    if dtype not in _NUMPY:
        raise TypeError(f"TF_DataType {dtype} has no numpy equivalent here")
    nbytes = lib.TF_TensorByteSize(tensor)
    raw = ctypes.string_at(data, nbytes) if nbytes else b""
    return np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(shape).copy()


# ------------------------------------------------------------------------------------------ sessions

@dataclass(frozen=True)
class TensorName:
    """`op:index` as a SignatureDef's TensorInfo names it."""

    op: str
    index: int

    @classmethod
    def parse(cls, name: str) -> "TensorName":
        op, _, index = name.partition(":")
        return cls(op, int(index) if index else 0)


class SavedModelSession:
    """One SavedModel loaded by TF Serving's loader; signatures run by their tensor names, as TF Serving does."""

    def __init__(self, export_dir: str | Path, tags: Sequence[str] = ("serve",), lib: Library | None = None,
                 config: bytes | None = None):
        from tensorflow.core.protobuf import meta_graph_pb2

        self.lib = lib or library()
        self.path = Path(export_dir)
        lib = self.lib
        self._graph = self._session = None
        status, opts, meta = lib.TF_NewStatus(), lib.TF_NewSessionOptions(), lib.TF_NewBuffer()
        try:
            if config:
                lib.TF_SetConfig(opts, config, len(config), status)
                lib.check(status)
            self._graph = lib.TF_NewGraph()
            tag_array = (ctypes.c_char_p * len(tags))(*[t.encode() for t in tags])
            session = lib.TF_LoadSessionFromSavedModel(opts, None, str(self.path).encode(), tag_array, len(tags),
                                                       self._graph, meta, status)
            lib.check(status)
            self._session = session
            self.meta_graph = meta_graph_pb2.MetaGraphDef.FromString(
                ctypes.string_at(meta.contents.data, meta.contents.length))
        except BaseException:
            self.close()
            raise
        finally:
            lib.TF_DeleteBuffer(meta)
            lib.TF_DeleteSessionOptions(opts)
            lib.TF_DeleteStatus(status)

    @property
    def signature_defs(self):
        """The SignatureDefs of the loaded MetaGraphDef (what TF Serving reads, not what Python rebuilds)."""
        return self.meta_graph.signature_def

    def _output(self, tensor_name: str) -> _Output:
        name = TensorName.parse(tensor_name)
        oper = self.lib.TF_GraphOperationByName(self._graph, name.op.encode())
        if not oper:
            raise CApiError("NOT_FOUND", f"tensor {tensor_name} named by the SignatureDef is not in the graph")
        return _Output(oper, name.index)

    def run_tensors(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]) -> list[np.ndarray]:
        """Session::Run with tensor names: feeds {name: array}, fetches [name] -> arrays in fetch order."""
        if self._session is None:
            raise CApiError("FAILED_PRECONDITION", "the session is closed")
        lib = self.lib
        feed_names = list(feeds)
        inputs = (_Output * max(len(feed_names), 1))(*[self._output(n) for n in feed_names])
        outputs = (_Output * max(len(fetches), 1))(*[self._output(n) for n in fetches])
        values = (_P * max(len(feed_names), 1))()
        results = (_P * max(len(fetches), 1))()
        status = lib.TF_NewStatus()
        made = []
        try:
            for i, n in enumerate(feed_names):
                values[i] = to_tensor(lib, feeds[n])
                made.append(values[i])
            lib.TF_SessionRun(self._session, None, inputs, values, len(feed_names), outputs, results, len(fetches),
                              None, 0, None, status)
            lib.check(status)
            return [from_tensor(lib, results[i]) for i in range(len(fetches))]
        finally:
            for t in made:
                lib.TF_DeleteTensor(t)
            for i in range(len(fetches)):
                if results[i]:
                    lib.TF_DeleteTensor(results[i])
            lib.TF_DeleteStatus(status)

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one SignatureDef: inputs by alias, outputs by alias, through the tensor names it lists."""
        sig = self.signature_defs.get(signature_name)
        if sig is None:
            raise CApiError("INVALID_ARGUMENT", f"Serving signature name: \"{signature_name}\" not found in "
                                                "signature def")
        feeds = {sig.inputs[alias].name: value for alias, value in inputs.items()}
        aliases = sorted(sig.outputs)
        fetched = self.run_tensors(feeds, [sig.outputs[a].name for a in aliases])
        return dict(zip(aliases, fetched))

    def close(self) -> None:
        lib = self.lib
        if self._session is not None:
            status = lib.TF_NewStatus()
            lib.TF_CloseSession(self._session, status)
            lib.TF_DeleteSession(self._session, status)
            lib.TF_DeleteStatus(status)
            self._session = None
        if self._graph is not None:
            lib.TF_DeleteGraph(self._graph)
            self._graph = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
