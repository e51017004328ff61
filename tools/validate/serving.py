"""Calling an export the way TF Serving does: load it with the `serve` tag, take requests over gRPC
(PredictRequest protos) and REST (row and columnar JSON) through tfs_formats, run the named signature, and
answer with the response TF Serving would send. Checks built on it: load, signatures, request formats, warmup."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tools import paths
from tools.validate import tfs_formats as tfs
from tools.validate.report import Report

# TF Serving reads at most this many warmup records (WarmupConsts::kMaxNumRecords) and fails beyond it.
MAX_WARMUP_RECORDS = 1000
SIGNATURES = (paths.SERVING_SIGNATURE, paths.PREDICT_ALIAS)
OUTPUT_DTYPES = {paths.OUTPUT_CLASSES: tf.int64, paths.OUTPUT_PROBABILITIES: tf.float32, paths.OUTPUT_LABELS: tf.string}
NUMPY_OUTPUTS = {paths.OUTPUT_CLASSES: np.int64, paths.OUTPUT_PROBABILITIES: np.float32}


class LoadedExport:
    """One exported version, loaded and called as TF Serving loads and calls it."""

    def __init__(self, path: Path, layout: str, model_name: str, version: int | None):
        self.path, self.layout, self.model_name, self.version = Path(path), layout, model_name, version
        self.signatures = tfs.load_signatures(path)
        start = time.monotonic()
        self.loaded = tf.saved_model.load(str(path), tags=["serve"])
        self.load_seconds = time.monotonic() - start

    def run(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        """Run a signature on already-checked inputs; graph errors propagate as tf.errors.OpError."""
        fn = self.loaded.signatures[signature_name]
        infos = self.signatures[signature_name].inputs
        feeds = {k: tf.constant(v, dtype=infos[k].dtype) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in fn(**feeds).items()}

    def _serve(self, signature_name: str, inputs: dict) -> dict[str, np.ndarray]:
        try:
            return self.run(signature_name, inputs)
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


def check_load(report: Report, layout: str, path: Path, model_name: str, version: int | None) -> LoadedExport | None:
    try:
        export = LoadedExport(path, layout, model_name, version)
    except tfs.ServingError as exc:
        report.add("serving.load", layout, False, f"not loadable with tag serve: {exc.message}")
        return None
    except Exception as exc:  # TensorFlow raises many types for a broken SavedModel
        report.add("serving.load", layout, False,
                   f"TensorFlow cannot load it with tag serve: {tfs.error_summary(str(exc))[:300]}")
        return None
    report.add("serving.load", layout, True, "loads with tag serve", seconds=round(export.load_seconds, 2),
               signatures=sorted(n for n in export.signatures if not n.startswith("__")))
    return export


def _describe(info) -> str:
    shape = "?" if info.shape is None else "[" + ", ".join("None" if d is None else str(d) for d in info.shape) + "]"
    return f"{info.dtype.name if info.dtype else 'invalid'} {shape}"


def check_signatures(report: Report, layout: str, export: LoadedExport, info: dict | None) -> bool:
    """serving_default and predict take `images` string [None] and give classes, probabilities and labels [None, k]."""
    k = (info or {}).get("top_k")
    problems = []
    for name in SIGNATURES:
        sig = export.signatures.get(name)
        if sig is None or name not in export.loaded.signatures:
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
