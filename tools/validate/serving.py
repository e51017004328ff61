"""Calling an export the way TF Serving does: load it with TF Serving's C++ loader (`LoadSavedModel`, through
the C API in tools/validate/capi.py) with the `serve` tag, take requests over gRPC (PredictRequest protos) and
REST (row and columnar JSON) through tfs_formats, run the named SignatureDef by its tensor names, and answer
with the response TF Serving would send. Python's object loader (`tf.saved_model.load`) loads the same export
beside it, and both must give the same answers: where they part, Python's loader has hidden what the server
will do. Checks built on it: load, loaders agree, signatures, request formats, warmup."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tools import grappler, onednn, paths
from tools.validate import capi, nchw_on_cpu
from tools.validate import tfs_formats as tfs
from tools.validate.report import Report

# TF Serving reads at most this many warmup records (WarmupConsts::kMaxNumRecords) and fails beyond it.
MAX_WARMUP_RECORDS = 1000
SIGNATURES = (paths.SERVING_SIGNATURE, paths.PREDICT_ALIAS)
OUTPUT_DTYPES = {paths.OUTPUT_CLASSES: tf.int64, paths.OUTPUT_PROBABILITIES: tf.float32, paths.OUTPUT_LABELS: tf.string}
NUMPY_OUTPUTS = {paths.OUTPUT_CLASSES: np.int64, paths.OUTPUT_PROBABILITIES: np.float32}


# How the report names the two load paths.
CAPI_LOADER = "TF Serving's C++ loader (C API: TF_LoadSessionFromSavedModel + TF_SessionRun)"
PYTHON_LOADER = "Python's tf.saved_model.load"


class LoadedExport:
    """One exported version, loaded and called as TF Serving loads and calls it.

    `session` is TF Serving's load path (None where the C API cannot run here: then `capi_unavailable` says why
    and every call goes through Python's loader, which the report marks as not run). `loaded` is Python's
    object loader, kept for the comparison; `python_error` holds why it failed to load, if it did. Beside a
    session, Python's loader is loaded on first use: only the loaders-agree check calls it, and rebuilding
    every function of the object graph costs seconds per export (~3 s CPU for the tiny test export) that
    callers of TF Serving's path alone (golden-set record and replay, hostile tests) need not pay.

    `nchw_to_nhwc`: both load paths run the channels_first export through grappler's CPU layout conversion
    where there is no GPU (tools/validate/nchw_on_cpu.py: without it, hours per validation on AVX2-only CPUs).
    `bf16`: both run it with grappler's bf16 rewrite, as TF Serving does for a `math: bf16` target (set by the
    process's settings: tools/onednn.py bf16, tools/grappler.py)."""

    def __init__(self, path: Path, layout: str, model_name: str, version: int | None, use_capi: bool = True):
        self.path, self.layout, self.model_name, self.version = Path(path), layout, model_name, version
        self.nchw_to_nhwc = nchw_on_cpu.applies(layout)
        self.bf16 = onednn.bf16()  # as a `math: bf16` target serves it (TF Serving's --mixed_precision=bfloat16)
        self.session: capi.SavedModelSession | None = None
        self.capi_unavailable: str | None = None if use_capi else "the C API path was turned off"
        self.load_seconds = self.python_load_seconds = None
        if use_capi:
            try:
                lib = capi.library()
            except capi.CApiUnavailable as exc:
                self.capi_unavailable = str(exc)
            else:
                start = time.monotonic()
                try:
                    self.session = capi.SavedModelSession(
                        path, lib=lib, config=grappler.session_config(nchw_to_nhwc=self.nchw_to_nhwc, bf16=self.bf16))
                except capi.CApiError as exc:
                    raise tfs.ServingError(exc.code, tfs.error_summary(exc.message)) from None
                self.load_seconds = time.monotonic() - start
        self.signatures = (tfs.signature_map(self.session.meta_graph) if self.session is not None
                           else tfs.load_signatures(path))
        self._loaded, self._python_error, self._python_tried = None, None, False
        if self.session is None:  # Python's loader is the only load path here: its failure is the load's
            self._load_python()
            self.load_seconds = self.python_load_seconds

    def _load_python(self) -> None:
        self._python_tried = True
        start = time.monotonic()
        try:
            self._loaded = tf.saved_model.load(str(self.path), tags=["serve"])
        except Exception as exc:  # TensorFlow raises many types for a SavedModel it cannot rebuild
            self._python_error = tfs.error_summary(str(exc)) or type(exc).__name__
            if self.session is None:
                raise
        finally:
            self.python_load_seconds = time.monotonic() - start

    @property
    def loaded(self):
        """What tf.saved_model.load returned (None if it failed: see python_error), loaded on first use."""
        if not self._python_tried:
            self._load_python()
        return self._loaded

    @property
    def python_error(self) -> str | None:
        if not self._python_tried:
            self._load_python()
        return self._python_error

    @property
    def loader(self) -> str:
        return CAPI_LOADER if self.session is not None else PYTHON_LOADER

    def run(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        """Run a signature on already-checked inputs through TF Serving's path (Python's where it cannot run).
        Graph errors propagate as capi.CApiError or tf.errors.OpError."""
        if self.session is not None:
            return self.session.run(signature_name, inputs)
        return self.run_python(signature_name, inputs)

    def run_python(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        """The same call through Python's object loader: its rebuilt tf.functions, not the SignatureDef."""
        if self.loaded is None:
            raise tfs.ServingError("FAILED_PRECONDITION", f"{PYTHON_LOADER} cannot load it: {self.python_error}")
        fn = self.loaded.signatures[signature_name]
        infos = self.signatures[signature_name].inputs
        feeds = {k: tf.constant(v, dtype=infos[k].dtype) for k, v in inputs.items()}
        with grappler.python_calls(nchw_to_nhwc=self.nchw_to_nhwc, bf16=self.bf16):
            return {k: v.numpy() for k, v in fn(**feeds).items()}

    def _serve(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        try:
            return self.run(signature_name, inputs)
        except capi.CApiError as exc:
            raise tfs.ServingError(exc.code, tfs.error_summary(exc.message)) from None
        except tf.errors.OpError as exc:
            raise tfs.error_from_tf(exc) from None

    def predict(self, images, signature_name: str = paths.SERVING_SIGNATURE) -> dict[str, np.ndarray]:
        """The signature's answer for a batch of encoded images (a ServingError as the server would answer)."""
        return self._serve(signature_name, {paths.INPUT_KEY: tfs.as_input_array(list(images))})

    def grpc(self, request_bytes: bytes) -> bytes:
        """PredictRequest bytes in, PredictResponse bytes out; raises ServingError with TF Serving's status."""
        request = predict_pb2.PredictRequest.FromString(request_bytes)
        name, inputs = tfs.predict_request_inputs(request, self.signatures)
        outputs = self._serve(name, inputs)
        return tfs.make_predict_response(outputs, request.model_spec.name or self.model_name, name,
                                         self.version).SerializeToString()

    def rest(self, body: str | bytes) -> tuple[int, str]:
        """A :predict body in, (HTTP status, response body) out, as TF Serving's REST API answers."""
        try:
            request = tfs.parse_rest_request(body, self.signatures)
            return 200, tfs.format_rest_response(self._serve(request.signature_name, request.inputs),
                                                 request.row_format)
        except tfs.ServingError as exc:
            return exc.http_status, exc.to_json()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def check_load(report: Report, layout: str, path: Path, model_name: str, version: int | None,
               use_capi: bool = True) -> LoadedExport | None:
    try:
        export = LoadedExport(path, layout, model_name, version, use_capi)
    except tfs.ServingError as exc:
        report.add("serving.load", layout, False, f"TF Serving's loader refuses it (tag serve): {exc.message}",
                   loader=CAPI_LOADER)
        return None
    except Exception as exc:  # TensorFlow raises many types for a broken SavedModel
        report.add("serving.load", layout, False,
                   f"TensorFlow cannot load it with tag serve: {tfs.error_summary(str(exc))[:300]}",
                   loader=PYTHON_LOADER)
        return None
    sigs = sorted(n for n in export.signatures if not n.startswith("__"))
    if export.session is None:
        report.not_run("serving.load", layout, f"TF Serving's load path could not be exercised: "
                                               f"{export.capi_unavailable}; loaded with {PYTHON_LOADER} only",
                       loader=PYTHON_LOADER, seconds=round(export.load_seconds, 2), signatures=sigs)
    else:
        report.add("serving.load", layout, True, f"loads with tag serve through {CAPI_LOADER}" +
                   (f"; {nchw_on_cpu.DESCRIPTION}" if export.nchw_to_nhwc else ""),
                   loader=CAPI_LOADER, seconds=round(export.load_seconds, 2), signatures=sigs,
                   **nchw_on_cpu.figures(export.nchw_to_nhwc))
    return export


def check_loaders_agree(report: Report, layout: str, export: LoadedExport, images: list[bytes]) -> None:
    """TF Serving's path and Python's loader give the same answers (both signatures) and warmup outcome."""
    if export.session is None:
        report.not_run("serving.loaders_agree", layout, f"no C API session to compare with: "
                                                        f"{export.capi_unavailable}")
        return
    if export.loaded is None:
        report.add("serving.loaders_agree", layout, False,
                   f"{PYTHON_LOADER} refuses an export TF Serving's loader serves: {export.python_error[:300]}")
        return
    problems, worst = [], 0.0
    inputs = {paths.INPUT_KEY: tfs.as_input_array(list(images))}
    for sig in SIGNATURES:
        answers = {}
        for name, call in (("C API", export.run), ("Python", export.run_python)):
            try:
                answers[name] = call(sig, inputs)
            except (capi.CApiError, tf.errors.OpError, tfs.ServingError) as exc:
                error = tfs.error_from_tf(exc) if isinstance(exc, tf.errors.OpError) else exc
                answers[name] = f"{error.code}: {tfs.error_summary(error.message)[:200]}"
        a, b = answers["C API"], answers["Python"]
        if isinstance(a, str) or isinstance(b, str):
            if isinstance(a, str) != isinstance(b, str):
                problems.append(f"{sig}: TF Serving's path answers {a if isinstance(a, str) else 'normally'}, "
                                f"Python's loader {b if isinstance(b, str) else 'normally'}")
            continue
        if set(a) != set(b):
            problems.append(f"{sig}: outputs {sorted(a)} through the C API, {sorted(b)} through Python")
            continue
        same, diff = _answers_equal(a, b)
        worst = max(worst, diff)
        if not same or diff > 0.0:
            problems.append(f"{sig}: answers differ (probabilities by up to {diff:.3g})")
    report.add("serving.loaders_agree", layout, not problems,
               "; ".join(problems) or f"{CAPI_LOADER} and {PYTHON_LOADER} give identical answers on "
                                      f"{' and '.join(SIGNATURES)}",
               images=len(images), max_abs_diff=worst, capi_load_seconds=round(export.load_seconds or 0, 2),
               python_load_seconds=round(export.python_load_seconds or 0, 2))


def _describe(info) -> str:
    shape = "?" if info.shape is None else "[" + ", ".join("None" if d is None else str(d) for d in info.shape) + "]"
    return f"{info.dtype.name if info.dtype else 'invalid'} {shape}"


def check_signatures(report: Report, layout: str, export: LoadedExport, info: dict | None) -> bool:
    """serving_default and predict take `images` string [None] and give classes, probabilities and labels [None, k]."""
    k = (info or {}).get("top_k")
    problems = []
    for name in SIGNATURES:
        sig = export.signatures.get(name)
        if sig is None:
            problems.append(f"signature {name!r} is missing (has {', '.join(sorted(export.signatures)) or 'none'})")
            continue
        if sig.method_name != tfs.PREDICT_METHOD:
            problems.append(f"{name}: method {sig.method_name!r}, expected {tfs.PREDICT_METHOD!r}")
        want_in = paths.INPUT_KEY
        got_in = {n: _describe(i) for n, i in sig.inputs.items()}
        if list(sig.inputs) != [want_in] or sig.inputs[want_in].dtype != tf.string or sig.inputs[want_in].shape != (None,):
            problems.append(f"{name}: input {', '.join(f'{n!r} {d}' for n, d in got_in.items()) or 'none'}; "
                            f"expected {want_in!r} string [None] (encoded images)")
        for out, dtype in OUTPUT_DTYPES.items():
            o = sig.outputs.get(out)
            if o is None:
                problems.append(f"{name}: no output {out!r} (has {', '.join(sorted(sig.outputs)) or 'none'})")
            elif o.dtype != dtype or o.shape is None or len(o.shape) != 2 or o.shape[0] is not None or (
                    k is not None and o.shape[1] != k):
                problems.append(f"{name}: output {out!r} is {_describe(o)}; expected {dtype.name} [None, {k}]")
        extra = sorted(set(sig.outputs) - set(OUTPUT_DTYPES))
        if extra:
            problems.append(f"{name}: unexpected outputs {', '.join(extra)}")
    report.add("serving.signatures", layout, not problems,
               "; ".join(problems) or f"{' and '.join(SIGNATURES)}: images string [None] -> classes int64, "
                                      f"probabilities float32, labels string [None, {k}]",
               signatures=[s for s in SIGNATURES if s in export.signatures], top_k=k)
    return not problems


def _answers_equal(a: dict, b: dict) -> tuple[bool, float]:
    diff = float(np.max(np.abs(a[paths.OUTPUT_PROBABILITIES].astype(np.float64) -
                               b[paths.OUTPUT_PROBABILITIES].astype(np.float64)), initial=0.0))
    same = (a[paths.OUTPUT_PROBABILITIES].shape == b[paths.OUTPUT_PROBABILITIES].shape
            and np.array_equal(a[paths.OUTPUT_CLASSES], b[paths.OUTPUT_CLASSES])
            and np.array_equal(a[paths.OUTPUT_LABELS], b[paths.OUTPUT_LABELS]))
    return same, diff


def request_formats(export: LoadedExport, images: list[bytes]) -> tuple[dict[str, dict], list[str], dict]:
    """Each signature through gRPC, REST row and REST columnar: ({"<sig>/<format>": outputs}, problems, sizes)."""
    answers, problems, sizes = {}, [], {}
    for sig in SIGNATURES:
        # Name the signature only when it is not the default: both spellings must reach the right one.
        named = None if sig == paths.SERVING_SIGNATURE else sig
        request = tfs.make_predict_request(export.model_name, {paths.INPUT_KEY: images}, sig, export.version)
        try:
            raw = export.grpc(request.SerializeToString())
            response = predict_pb2.PredictResponse.FromString(raw)
            if response.model_spec.signature_name != sig:
                problems.append(f"gRPC {sig}: response names signature {response.model_spec.signature_name!r}")
            answers[f"{sig}/grpc"] = tfs.predict_response_outputs(response)
            sizes["grpc_response_bytes"] = len(raw)
        except tfs.ServingError as exc:
            problems.append(f"gRPC {sig}: {exc}")
        for row in (True, False):
            fmt = "rest_row" if row else "rest_columnar"
            body = json.dumps(tfs.rest_request_body(images, named, row_format=row))
            status, text = export.rest(body)
            if status != 200:
                problems.append(f"REST {'instances' if row else 'inputs'} {sig}: HTTP {status} {json.loads(text)['error']}")
                continue
            doc = json.loads(text)
            key = "predictions" if row else "outputs"
            if list(doc) != [key]:
                problems.append(f"REST {sig}: response has {list(doc)}, expected {key!r}")
                continue
            if row and (len(doc[key]) != len(images) or not all(isinstance(r, dict) for r in doc[key])):
                problems.append(f"REST {sig}: 'predictions' is not one object per instance")
                continue
            answers[f"{sig}/{fmt}"] = tfs.parse_rest_response(text, NUMPY_OUTPUTS)
            sizes[f"{fmt}_response_bytes"] = len(text)
    return answers, problems, sizes


def check_request_formats(report: Report, layout: str, export: LoadedExport, images: list[bytes]) -> dict | None:
    """Returns the serving_default answer (gRPC) for reuse, or None when a format failed."""
    start = time.monotonic()
    answers, problems, sizes = request_formats(export, images)
    baseline_key = f"{paths.SERVING_SIGNATURE}/grpc"
    max_diff = 0.0
    if baseline_key in answers:
        base = answers[baseline_key]
        for key, answer in answers.items():
            same, diff = _answers_equal(base, answer)
            max_diff = max(max_diff, diff)
            # Identical bytes in, identical batch shape, same graph: the answers must be identical.
            if not same or diff > 0.0:
                problems.append(f"{key} differs from {baseline_key} (probabilities differ by up to {diff:.3g})")
    report.add("serving.request_formats", layout, not problems,
               "; ".join(problems) or f"gRPC, REST instances and REST inputs give identical answers on "
                                      f"{' and '.join(SIGNATURES)}",
               calls=len(answers), images=len(images), max_abs_diff=max_diff, seconds=round(time.monotonic() - start, 2),
               **sizes)
    return answers.get(baseline_key) if not problems else None


def check_warmup(report: Report, layout: str, export: LoadedExport) -> None:
    """Every warmup record parses as a PredictionLog, is a valid Predict request for a signature, and runs."""
    warmup = export.path / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE
    start = time.monotonic()
    problems, batches, names, count = [], [], set(), 0
    try:
        records = [r.numpy() for r in tf.data.TFRecordDataset(str(warmup))]
    except (tf.errors.OpError, OSError) as exc:
        report.add("serving.warmup", layout, False, f"{paths.WARMUP_FILE} is not a readable TFRecord file: "
                                                    f"{tfs.error_summary(str(exc))}")
        return
    count = len(records)
    if count == 0:
        problems.append(f"{paths.WARMUP_FILE} has no records: the first requests after a rollout pay for warm-up")
    if count > MAX_WARMUP_RECORDS:
        problems.append(f"{count} records: TF Serving fails to load a version with more than {MAX_WARMUP_RECORDS}")
    for index, raw in enumerate(records[:MAX_WARMUP_RECORDS + 1]):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(raw)
        except Exception:
            problems.append(f"record {index} does not parse as a PredictionLog")
            continue
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            problems.append(f"record {index} is a {kind or 'empty log'}; this servable answers Predict only")
            continue
        request = log.predict_log.request
        names.add(request.model_spec.name)
        try:
            sig, inputs = tfs.predict_request_inputs(request, export.signatures)
            if set(inputs) != {paths.INPUT_KEY}:
                raise tfs.ServingError("INVALID_ARGUMENT", f"inputs {sorted(inputs)}, expected {paths.INPUT_KEY!r}")
            n = len(inputs[paths.INPUT_KEY])
            outputs = export._serve(sig, inputs)
            if outputs[paths.OUTPUT_PROBABILITIES].shape[0] != n:
                problems.append(f"record {index}: {n} images in, {outputs[paths.OUTPUT_PROBABILITIES].shape[0]} answers out")
            batches.append(n)
        except tfs.ServingError as exc:
            problems.append(f"record {index}: {exc}")
    report.add("serving.warmup", layout, not problems,
               "; ".join(problems[:5]) or f"all {count} warmup records are valid Predict requests and run",
               records=count, batch_sizes=batches, images=sum(batches), model_names=sorted(names),
               seconds=round(time.monotonic() - start, 2))
