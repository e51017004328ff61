"""The PostSync smoke test script against a tiny local TF Serving stand-in (http.server), and its Job."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "k8s/components/smoke-test/smoke_test.py"

GOOD = {"predictions": [{"classes": [281, 285, 282, 287, 728],
                         "probabilities": [0.61, 0.2, 0.1, 0.05, 0.01],
                         "labels": ["tabby", "Egyptian cat", "tiger cat", "lynx", "plastic bag"]}]}


def load_script():
    spec = importlib.util.spec_from_file_location("smoke_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metadata(k: int):
    dims = [{"size": "-1", "name": ""}, {"size": str(k), "name": ""}]
    return {"model_spec": {"name": "resnet", "version": "2"}, "metadata": {"signature_def": {"signature_def": {
        "serving_default": {"outputs": {"classes": {"dtype": "DT_INT64", "tensor_shape": {"dim": dims}}}}}}}}


class Stub:
    """Answers predict calls from a list of (status, body) replies; the last one repeats."""

    def __init__(self, replies, meta_k: int = 5):
        self.replies, self.meta_k, self.requests = list(replies), meta_k, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                stub.requests.append(("GET", self.path, None))
                self.reply(200, metadata(stub.meta_k))

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append(("POST", self.path, json.loads(body)))
                reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                self.reply(*reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def smoke(url: str, *args: str, env: dict | None = None):
    argv = [sys.executable, str(SCRIPT), *args] if env else \
        [sys.executable, str(SCRIPT), "--url", url, "--model", "resnet", "--version", "2", "--deadline", "1", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_good_answer_passes_and_the_request_is_tf_servings_rest_format():
    with Stub([(200, GOOD)]) as stub:
        result = smoke(stub.url, "--top-k", "5")
    assert result.returncode == 0, result.stderr
    assert "smoke test passed: resnet version 2 answered top-5: tabby (0.610)" in result.stdout
    [(method, path, body)] = stub.requests
    assert (method, path) == ("POST", "/v1/models/resnet/versions/2:predict")
    [instance] = body["instances"]
    image = Image.open(io.BytesIO(base64.b64decode(instance["b64"])))
    assert image.format == "JPEG" and image.size == (96, 96)
    image.load()  # decodes every block: a truncated or malformed entropy stream raises here


def test_settings_from_the_environment_as_in_the_job_and_k_from_the_signature():
    with Stub([(200, GOOD)], meta_k=5) as stub:
        env = {"SMOKE_URL": stub.url, "MODEL_NAME": "resnet", "MODEL_VERSION": "2", "SMOKE_DEADLINE_SECONDS": "1",
               "MODEL_LAYOUT": "channels_last", "PATH": "/usr/bin:/bin"}
        result = smoke(stub.url, env=env)
    assert result.returncode == 0, result.stderr
    assert [r[:2] for r in stub.requests] == [("GET", "/v1/models/resnet/versions/2/metadata"),
                                              ("POST", "/v1/models/resnet/versions/2:predict")]


def test_answer_of_another_k_than_the_signature_declares_fails():
    with Stub([(200, GOOD)], meta_k=3) as stub:
        result = smoke(stub.url)
    assert result.returncode == 1
    assert "'classes' must hold 3 values (top_k), got 5 values" in result.stderr


def bad(**row):
    return {"predictions": [{**GOOD["predictions"][0], **row}]}


@pytest.mark.parametrize("answer, message", [
    (bad(labels=["tabby", "Egyptian cat", "tiger cat", "lynx"]), "'labels' must hold 5 values (top_k), got 4 values"),
    ({"predictions": [GOOD["predictions"][0]] * 2}, "expected one prediction (a mapping) for one image"),
    ({"outputs": GOOD["predictions"][0]}, "no 'predictions' list in the answer"),
    (bad(probabilities=[0.1, 0.2, 0.3, 0.05, 0.01]), "'probabilities' must be in descending order"),
    (bad(probabilities=[1.5, 0.2, 0.1, 0.05, 0.01]), "'probabilities' must lie in [0, 1]"),
    (bad(classes=[281, -1, 282, 287, 728]), "'classes' must be non-negative integers"),
    (bad(labels=["tabby", "", "tiger cat", "lynx", "plastic bag"]), "'labels' must be non-empty strings"),
])
def test_wrong_answers_fail_at_once(answer, message):
    with Stub([(200, answer)]) as stub:
        result = smoke(stub.url, "--top-k", "5", "--deadline", "30")
    assert result.returncode == 1
    assert f"smoke test FAILED: POST {stub.url}/v1/models/resnet/versions/2:predict: {message}" in result.stderr
    assert len(stub.requests) == 1  # a definite wrong answer is not retried


def test_404_is_retried_until_the_deadline_then_fails():
    error = {"error": "Servable not found for request: Specific(resnet, 2)"}
    with Stub([(404, error)]) as stub:
        result = smoke(stub.url, "--top-k", "5", "--deadline", "1")
    assert result.returncode == 1
    assert "HTTP 404: {'error': 'Servable not found for request: Specific(resnet, 2)'}" in result.stderr
    assert len(stub.requests) >= 2 and "attempt 1: HTTP 404" in result.stderr


def test_a_pod_still_on_the_old_version_then_the_new_one_passes():
    with Stub([(404, {"error": "Servable not found"}), (200, GOOD)]) as stub:
        result = smoke(stub.url, "--top-k", "5", "--deadline", "30")
    assert result.returncode == 0, result.stderr
    assert len(stub.requests) == 2


def test_server_error_is_not_retried():
    with Stub([(400, {"error": "JSON Value: ... Type: String is not of expected type: float"})]) as stub:
        result = smoke(stub.url, "--top-k", "5", "--deadline", "30")
    assert result.returncode == 1 and "HTTP 400" in result.stderr and len(stub.requests) == 1


def test_connection_refused_fails_after_the_deadline():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = smoke(f"http://127.0.0.1:{port}", "--top-k", "5", "--deadline", "0.5")
    assert result.returncode == 1
    assert "smoke test FAILED after" in result.stderr and "no answer: [Errno 111] Connection refused" in result.stderr


def test_missing_settings_are_named():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert result.returncode == 2 and "missing --url, --model, --version" in result.stderr


def test_check_response_accepts_ties_and_bounds():
    check = load_script().check_response
    assert check(bad(probabilities=[1, 0.5, 0.5, 0.0, 0.0]), 5) is None
    assert check(GOOD, 4) == "'classes' must hold 4 values (top_k), got 5 values"
    assert check(bad(classes=[True, 1, 2, 3, 4]), 5).startswith("'classes' must be non-negative integers")
