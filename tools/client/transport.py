"""TF Serving's predict API over REST and gRPC, behind one interface.

A transport turns a batch of encoded images into a request payload once (`encode`) and sends a payload
(`send`), so the profiler can time the round trip alone. Every failure becomes one UserError line that
names the endpoint and what went wrong: unreachable, timed out, TLS refused, model not found, or the
server's own `{"error": ...}` message.
"""
from __future__ import annotations

import base64
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from tools import paths
from tools.errors import UserError


class ServerError(UserError):
    """TF Serving answered with an error of its own (`{"error": ...}` or a gRPC status other than NOT_FOUND)."""


REST_PORT = 8501
GRPC_PORT = 8500
# Requests with a batch of full-size photos exceed gRPC's 4 MB default; TF Serving itself accepts up to 2 GB.
GRPC_MAX_MESSAGE = 1 << 30


@dataclass(frozen=True)
class Endpoint:
    """Where the model is served and which servable a request names."""

    model: str
    host: str = "localhost"
    port: int | None = None  # None: TF Serving's default for the protocol
    grpc: bool = False
    tls: bool = False
    ca_cert: Path | None = None
    insecure_skip_verify: bool = False
    base_path: str = ""  # REST only: a prefix before /v1, e.g. an ingress route
    version: int | None = None
    label: str | None = None
    signature: str = paths.SERVING_SIGNATURE
    timeout: float = 30.0

    def __post_init__(self):
        if self.version is not None and self.label is not None:
            raise UserError("give either a version or a label, not both")
        if self.version is not None and self.version < 1:
            raise UserError(f"version must be a positive integer, got {self.version}")
        if self.timeout <= 0:
            raise UserError(f"timeout must be more than 0 seconds, got {self.timeout}")
        if self.port is not None and not 0 < self.port < 65536:
            raise UserError(f"port must be between 1 and 65535, got {self.port}")
        if (self.ca_cert or self.insecure_skip_verify) and not self.tls:
            raise UserError("--ca-cert and --insecure-skip-verify need TLS: add --tls (or use an https:// URL)")
        if self.ca_cert and self.insecure_skip_verify:
            raise UserError("give either --ca-cert or --insecure-skip-verify, not both")
        if self.grpc and self.insecure_skip_verify:
            raise UserError("--insecure-skip-verify applies to REST only: gRPC cannot skip certificate checks; "
                            "pass the server's CA certificate with --ca-cert")
        if self.ca_cert and not Path(self.ca_cert).is_file():
            raise UserError(f"CA certificate {self.ca_cert} does not exist")

    @property
    def effective_port(self) -> int:
        return self.port or (GRPC_PORT if self.grpc else REST_PORT)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.effective_port}"

    @property
    def model_path(self) -> str:
        path = f"/v1/models/{self.model}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        elif self.label is not None:
            path += f"/labels/{self.label}"
        return path

    @property
    def predict_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}{self.base_path}{self.model_path}:predict"

    @property
    def where(self) -> str:
        """The endpoint as a person reads it in a message."""
        return self.predict_url if not self.grpc else f"{'grpcs' if self.tls else 'grpc'}://{self.address}"

    @property
    def servable(self) -> str:
        if self.version is not None:
            return f"model {self.model!r} version {self.version}"
        if self.label is not None:
            return f"model {self.model!r} label {self.label!r}"
        return f"model {self.model!r} (latest version)"


def parse_url(url: str, grpc: bool) -> dict[str, Any]:
    """Endpoint fields from --url: http(s)://host[:port][/prefix] for REST, [grpc(s)://]host[:port] for gRPC."""
    if "://" not in url:
        if not grpc:
            raise UserError(f"--url {url!r} needs a scheme: http://host:port or https://host:port")
        url = f"grpc://{url}"
    parts = urlsplit(url)
    schemes = ("grpc", "grpcs") if grpc else ("http", "https")
    if parts.scheme not in schemes:
        other = "with --grpc use grpc://host:port or host:port" if grpc else "gRPC needs --grpc"
        raise UserError(f"--url {url!r}: scheme {parts.scheme!r} is not {' or '.join(schemes)} ({other})")
    try:
        port = parts.port
    except ValueError:
        raise UserError(f"--url {url!r} has an invalid port") from None
    if not parts.hostname:
        raise UserError(f"--url {url!r} has no host")
    if grpc and parts.path not in ("", "/"):
        raise UserError(f"--url {url!r}: a gRPC address has no path")
    if parts.query or parts.fragment:
        raise UserError(f"--url {url!r}: give the server's base URL, without a query or fragment")
    base_path = parts.path.rstrip("/")
    if base_path.endswith(":predict") or "/v1/" in base_path + "/":
        raise UserError(f"--url {url!r}: give the server's base URL (http://host:8501); the client adds "
                        "/v1/models/<name>:predict itself")
    return {"host": parts.hostname, "port": port, "tls": parts.scheme in ("https", "grpcs"),
            "base_path": base_path}


@dataclass
class Prediction:
    classes: list[int]
    probabilities: list[float]
    labels: list[str] = field(default_factory=list)


class Transport(Protocol):
    endpoint: Endpoint

    def encode(self, images: list[bytes]) -> Any: ...

    def send(self, payload: Any, count: int) -> list[Prediction]: ...

    def close(self) -> None: ...


def predict(transport: Transport, images: list[bytes]) -> list[Prediction]:
    return transport.send(transport.encode(images), len(images))


def _predictions(outputs: dict[str, list], count: int, where: str) -> list[Prediction]:
    """Per-image Predictions from column lists [count][k]; a signature without them is reported plainly."""
    missing = [k for k in (paths.OUTPUT_CLASSES, paths.OUTPUT_PROBABILITIES) if k not in outputs]
    if missing:
        raise UserError(f"the answer from {where} has no {' or '.join(missing)} output (it has "
                        f"{', '.join(sorted(outputs)) or 'none'}): is this signature the image classifier's?")
    classes, probs = outputs[paths.OUTPUT_CLASSES], outputs[paths.OUTPUT_PROBABILITIES]
    labels = outputs.get(paths.OUTPUT_LABELS) or [[] for _ in classes]
    if not len(classes) == len(probs) == len(labels) == count:
        raise UserError(f"the answer from {where} has {len(classes)} predictions for {count} images")
    return [Prediction([int(c) for c in cs], [float(p) for p in ps], [str(x) for x in ls])
            for cs, ps, ls in zip(classes, probs, labels)]


class RestTransport:
    """POST /v1/models/<name>[/versions/N|/labels/L]:predict with b64 instances, keep-alive per thread."""

    def __init__(self, endpoint: Endpoint):
        import requests  # noqa: F401  (installed with TensorFlow; imported here so gRPC users never need it)

        self.endpoint = endpoint
        # Per request, not on the Session: requests lets REQUESTS_CA_BUNDLE override a Session's `verify`.
        self._verify = str(endpoint.ca_cert) if endpoint.ca_cert else not endpoint.insecure_skip_verify
        # requests.Session is not thread-safe: each sending thread keeps its own (and its own connection).
        self._local = threading.local()
        self._sessions: list = []
        self._lock = threading.Lock()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def encode(self, images: list[bytes]) -> bytes:
        body = {
            "signature_name": self.endpoint.signature,
            "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images],
        }
        return json.dumps(body).encode()

    def send(self, payload: bytes, count: int) -> list[Prediction]:
        import requests

        ep = self.endpoint
        try:
            with warnings.catch_warnings():
                # The user asked for no verification with --insecure-skip-verify; one warning per request is noise.
                warnings.simplefilter("ignore")
                response = self._session().post(
                    ep.predict_url, data=payload, timeout=ep.timeout, headers={"Content-Type": "application/json"},
                    verify=self._verify,
                )
        except requests.exceptions.SSLError as exc:
            raise UserError(f"TLS connection to {ep.address} failed: {_ssl_reason(exc)}") from None
        except requests.exceptions.ConnectTimeout:
            raise UserError(f"cannot reach TF Serving at {ep.address}: no connection within {ep.timeout:g} s") from None
        except requests.exceptions.Timeout:
            raise UserError(f"no answer from {ep.predict_url} within {ep.timeout:g} s (raise --timeout?)") from None
        except requests.exceptions.ConnectionError as exc:
            reason = _connection_reason(exc)
            if "closed the connection" in reason and not ep.tls:
                reason += " (does it expect TLS? use https://)"
            raise UserError(f"cannot reach TF Serving at {ep.address}: {reason}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            text = " ".join(response.text.split())[:120]
            raise UserError(f"{ep.predict_url} answered HTTP {response.status_code} with a body that is not TF "
                            f"Serving's JSON ({text or 'empty'}): is this TF Serving's REST port?")
        if response.status_code != 200 or "error" in answer:
            message = str(answer.get("error", answer))
            if response.status_code == 404:
                raise UserError(f"{ep.servable} not found at {ep.where}: {message}")
            raise ServerError(f"TF Serving at {ep.address} answered HTTP {response.status_code}: {message}")
        if "predictions" in answer:
            rows = answer["predictions"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise UserError(f"the answer from {ep.where} does not hold one object of named outputs per image")
            outputs = {key: [row.get(key) for row in rows] for key in (rows[0] if rows else {})}
        elif isinstance(answer.get("outputs"), dict):
            outputs = answer["outputs"]
        else:
            raise UserError(f"the answer from {ep.where} has neither 'predictions' nor named 'outputs'")
        return _predictions(outputs, count, ep.where)

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused (is the server running, and is this its port?)"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network is unreachable"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
        ("Connection reset", "the connection was reset"),
    ):
        if needle in text:
            return reason
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _ssl_reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(")[0].strip(" ')\"") if \
            "certificate verify failed:" in text else ""
        return (f"certificate verify failed{': ' + detail if detail else ''} "
                "(pass the server's CA with --ca-cert, or --insecure-skip-verify to skip the check)")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server does not speak TLS on this port (drop --tls?)"
    return text.splitlines()[0][:200]


class GrpcTransport:
    """PredictionService.Predict with a PredictRequest holding the batch as a 1-D DT_STRING tensor."""

    def __init__(self, endpoint: Endpoint):
        # The request protos import TensorFlow, whose C++ start-up chatter is noise in a client's output.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # gRPC's core logs a failed TLS handshake at INFO on stderr; the UserError already says it in one line.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.endpoint = endpoint
        options = [("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
                   ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE)]
        if endpoint.tls:
            roots = Path(endpoint.ca_cert).read_bytes() if endpoint.ca_cert else None
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(endpoint.address, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(endpoint.address, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def encode(self, images: list[bytes]):
        from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorflow_serving.apis import predict_pb2

        ep = self.endpoint
        request = predict_pb2.PredictRequest()
        request.model_spec.name = ep.model
        request.model_spec.signature_name = ep.signature
        if ep.version is not None:
            request.model_spec.version.value = ep.version
        elif ep.label is not None:
            request.model_spec.version_label = ep.label
        request.inputs[paths.INPUT_KEY].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(
                size=len(images))]),
            string_val=images,
        ))
        return request

    def send(self, payload, count: int) -> list[Prediction]:
        import grpc

        ep = self.endpoint
        try:
            response = self.stub.Predict(payload, timeout=ep.timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), (exc.details() or "").strip()
            if code == grpc.StatusCode.UNAVAILABLE:
                if "CERTIFICATE_VERIFY_FAILED" in details:
                    raise UserError(f"TLS connection to {ep.address} failed: certificate verify failed "
                                    "(pass the server's CA with --ca-cert)") from None
                if "WRONG_VERSION_NUMBER" in details:
                    raise UserError(f"TLS connection to {ep.address} failed: the server does not speak TLS on "
                                    "this port (drop --tls?)") from None
                if "handshake" in details.lower():
                    raise UserError(f"TLS connection to {ep.address} failed: {details.splitlines()[0][:200]}") from None
                reason = "connection refused (is the server running, and is this its port?)" \
                    if "refused" in details.lower() else details.splitlines()[0][:200]
                raise UserError(f"cannot reach TF Serving at {ep.address} over gRPC: {reason}") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise UserError(f"no answer from {ep.where} within {ep.timeout:g} s (raise --timeout?)") from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise UserError(f"{ep.servable} not found at {ep.where}: {details}") from None
            raise ServerError(f"TF Serving at {ep.address} answered {code.name}: {details}") from None
        outputs = {name: _tensor_rows(tensor) for name, tensor in response.outputs.items()}
        return _predictions(outputs, count, ep.where)

    def close(self) -> None:
        self.channel.close()


def _tensor_rows(tensor) -> list[list]:
    """A [n, k] TensorProto of int64, float or string as n lists of k values (no TensorFlow ops needed)."""
    dims = [d.size for d in tensor.tensor_shape.dim]
    values: list = (list(tensor.int64_val) or list(tensor.int_val) or list(tensor.float_val)
                    or [s.decode("utf-8", "replace") for s in tensor.string_val])
    if not values and tensor.tensor_content:
        import numpy as np

        from tensorflow.core.framework import types_pb2

        dtypes = {types_pb2.DT_INT64: np.int64, types_pb2.DT_INT32: np.int32, types_pb2.DT_FLOAT: np.float32}
        dtype = dtypes.get(tensor.dtype)
        values = np.frombuffer(tensor.tensor_content, dtype=dtype).tolist() if dtype else []
    if len(dims) != 2:
        return [values]
    n, k = dims
    return [values[i * k:(i + 1) * k] for i in range(n)]


def make_transport(endpoint: Endpoint) -> Transport:
    """A transport for the endpoint's protocol; safe to share between threads."""
    return GrpcTransport(endpoint) if endpoint.grpc else RestTransport(endpoint)
