"""A TEST DOUBLE of TensorFlow Serving's predict APIs, for tests only: never ship or deploy it.

It answers the requests the real model server answers, in the same shapes, so the client and the profiler
can be tested on this machine, which has no TF Serving binary:

- REST: `POST /v1/models/<name>[/versions/N|/labels/L]:predict` (row `instances` and columnar `inputs`),
  `GET /v1/models/<name>[/versions/N|/labels/L]` (model status); errors as `{"error": "..."}` with the HTTP
  status TF Serving maps each error code to.
- gRPC: `tensorflow.serving.PredictionService/Predict`.

Behind both sits the exported SavedModel itself, loaded with tf.saved_model.load and called by signature
name. What happens between the wire and the signature (JSON and TensorProto parsing, input checks, response
formats, error texts) is tools/validate/tfs_formats.py, the one reproduction of TF Serving's rules in this
repository; the double adds routing, versions and labels (server_core.cc, basic_manager.cc messages) and
binds only 127.0.0.1, on ephemeral ports.

What it is not: no batching, model config file, version policy, warmup, monitoring, classify/regress,
metadata, or load/unload lifecycle. A green test against it says the client speaks the protocol; it says
nothing about TF Serving's performance.
"""
from __future__ import annotations

import json
import re
import ssl
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc

from tools.validate import tfs_formats as tfs
from tools.validate.tfs_formats import ServingError

LOOPBACK = "127.0.0.1"
_PATH = re.compile(r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                   r"(?::(?P<method>[a-z]+))?$")


@dataclass
class Call:
    """One request the double answered (or refused), for tests to inspect."""

    protocol: str  # "rest" or "grpc"
    model: str
    version: int | None  # the version it resolved to
    signature: str
    batch: int
    error: str | None = None


@dataclass
class _Version:
    loaded: object  # what tf.saved_model.load returned
    signatures: dict  # tfs.SignatureInfo by name, as TF Serving reads them from saved_model.pb


class ServingDouble:
    """Serve `models` ({name: {version: SavedModel dir}}) with optional `labels` ({name: {label: version}}).

    `tls=(cert_pem, key_pem)` serves both protocols over TLS. `delay` (seconds) is slept before each answer,
    so a test can provoke a client timeout. Use as a context manager or call start()/stop().
    """

    def __init__(self, models: dict[str, dict[int, Path]], labels: dict[str, dict[str, int]] | None = None,
                 tls: tuple[bytes, bytes] | None = None):
        self.models = {name: {int(v): Path(p) for v, p in versions.items()} for name, versions in models.items()}
        self.labels = labels or {}
        self.tls = tls
        self.delay = 0.0
        self.calls: list[Call] = []
        self._versions: dict[Path, _Version] = {}
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.rest_port = self.grpc_port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "ServingDouble":
        import tensorflow as tf

        for versions in self.models.values():
            for path in versions.values():
                if path not in self._versions:
                    self._versions[path] = _Version(tf.saved_model.load(str(path)), tfs.load_signatures(path))
        self._start_rest()
        self._start_grpc()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "ServingDouble":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.rest_port}"

    @property
    def grpc_address(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def _start_rest(self) -> None:
        handler = type("Handler", (_RestHandler,), {"double": self})
        server = _QuietHTTPServer((LOOPBACK, 0), handler)
        if self.tls:
            server.socket = _server_ssl_context(*self.tls).wrap_socket(server.socket, server_side=True)
        self._http = server
        self.rest_port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="serving-double-rest", daemon=True).start()

    def _start_grpc(self) -> None:
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        options = [("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_servicer(self), server)
        if self.tls:
            cert, key = self.tls
            self.grpc_port = server.add_secure_port(f"{LOOPBACK}:0", grpc.ssl_server_credentials([(key, cert)]))
        else:
            self.grpc_port = server.add_insecure_port(f"{LOOPBACK}:0")
        server.start()
        self._grpc = server

    # -- the servable side, shared by both protocols -----------------------------------------------------------

    def resolve(self, model: str, version: int | None, label: str | None) -> int:
        """The version a request names, or TF Serving's error for it (server_core.cc, basic_manager.cc)."""
        versions = self.models.get(model)
        if label is not None:
            if label not in self.labels.get(model, {}):
                raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
            version = self.labels[model][label]
        if not versions or (version is not None and version not in versions):
            request = f"Specific({model}, {version})" if version is not None else f"Latest({model})"
            raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
        return version if version is not None else max(versions)

    def answer(self, protocol: str, model: str, version: int | None, label: str | None, parse) -> tuple:
        """Resolve the servable, let `parse(signatures)` read the request into (signature name, inputs, extra),
        run the signature; returns (version, signature name, outputs, extra) or raises ServingError."""
        import tensorflow as tf

        if self.delay:
            time.sleep(self.delay)
        call = Call(protocol, model, None, "", 0)
        self.calls.append(call)
        try:
            call.version = self.resolve(model, version, label)
            servable = self._versions[self.models[model][call.version]]
            name, inputs, extra = parse(servable.signatures)
            call.signature = name
            call.batch = max((len(v) for v in inputs.values() if getattr(v, "ndim", 0)), default=0)
            try:
                outputs = servable.loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
            except tf.errors.OpError as exc:
                raise tfs.error_from_tf(exc) from None
            return call.version, name, {k: v.numpy() for k, v in outputs.items()}, extra
        except ServingError as exc:
            call.error = exc.message
            raise


def _server_ssl_context(cert: bytes, key: bytes) -> ssl.SSLContext:
    import tempfile

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "cert.pem").write_bytes(cert)
        (Path(d) / "key.pem").write_bytes(key)
        context.load_cert_chain(Path(d) / "cert.pem", Path(d) / "key.pem")
    return context


# -- REST ---------------------------------------------------------------------------------------------------------


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout test) leaves a broken pipe behind; that is expected, not news.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)


class _RestHandler(BaseHTTPRequestHandler):
    double: ServingDouble
    protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's REST server offers
    server_version = "TFServingTestDouble"

    def log_message(self, format, *args):  # noqa: A002  (tests read Call records, not access logs)
        pass

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: ServingError) -> None:
        self._send(exc.http_status, exc.to_json())

    def _route(self, method: str):
        path = self.path.split("?", 1)[0]
        if not path.startswith("/v1/"):
            # TF Serving's REST dispatcher only takes /v1/...; anything else gets a bare 404.
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        m = _PATH.match(path)
        if not m or not ((method == "POST" and m["method"] == "predict") or (method == "GET" and not m["method"])):
            self._error(ServingError("INVALID_ARGUMENT", f"Malformed request: {method} {path}"))
            return None
        return m

    def do_GET(self):  # model status
        m = self._route("GET")
        if m is None:
            return
        try:
            if m["version"] is None and m["label"] is None:
                self.double.resolve(m["model"], None, None)
                versions = sorted(self.double.models[m["model"]], reverse=True)
            else:
                versions = [self.double.resolve(m["model"], int(m["version"]) if m["version"] else None, m["label"])]
        except ServingError as exc:
            return self._error(exc)
        self._send(200, json.dumps({"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]}, indent=1))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        m = self._route("POST")
        if m is None:
            return

        def parse(signatures):
            request = tfs.parse_rest_request(body, signatures)
            return request.signature_name, request.inputs, request.row_format

        try:
            _, _, outputs, row_format = self.double.answer(
                "rest", m["model"], int(m["version"]) if m["version"] else None, m["label"], parse)
            self._send(200, tfs.format_rest_response(outputs, row_format))
        except ServingError as exc:
            self._error(exc)


# -- gRPC ---------------------------------------------------------------------------------------------------------


def _servicer(double: ServingDouble):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            label = spec.version_label or None

            def parse(signatures):
                name, inputs = tfs.predict_request_inputs(request, signatures)
                return name, inputs, None

            try:
                resolved, name, outputs, _ = double.answer("grpc", spec.name, version, label, parse)
                return tfs.make_predict_response(outputs, spec.name, name, resolved)
            except ServingError as exc:
                context.abort(exc.grpc_code, exc.message)

    return PredictionServicer()
