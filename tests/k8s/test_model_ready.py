"""The readiness probe script (k8s/base/model-ready.sh) against a stand-in for TF Serving's REST status API.

The stand-in answers GET /v1/models/<name>/versions/<n> the way TF Serving documents it: 200 with the
version's state in every state, 404 for a version it does not manage. No TF Serving runs here.
"""
from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading

import pytest

from tools import paths

SCRIPT = paths.REPO_ROOT / paths.BASE_DIR / "model-ready.sh"
pytestmark = pytest.mark.skipif(not shutil.which("bash"), reason="the probe runs with bash, as in the image")


def status_body(version: str, state: str) -> str:
    return json.dumps({"model_version_status": [{"version": version, "state": state,
                                                 "status": {"error_code": "OK", "error_message": ""}}]}, indent=1)


class StandIn(http.server.BaseHTTPRequestHandler):
    # Keep-alive capable like TF Serving's server: the probe's `Connection: close` ends the response.
    protocol_version = "HTTP/1.1"
    states: dict[str, str] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        StandIn.requests.append(self.path)
        version = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/v1/models/resnet/versions/") and version in self.states:
            code, body = 200, status_body(version, self.states[version])
        else:
            code, body = 404, json.dumps({"error": f"Servable not found for request: Specific(resnet, {version})"})
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    StandIn.requests = []
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def probe(port: int, version: str = "3"):
    env = {"PATH": os.environ["PATH"], "MODEL_NAME": "resnet", "MODEL_VERSION": version, "REST_PORT": str(port)}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=20)


def test_ready_when_the_pinned_version_is_available(server):
    StandIn.states = {"3": "AVAILABLE"}
    result = probe(server.server_address[1])
    assert result.returncode == 0, result.stdout
    assert StandIn.requests == ["/v1/models/resnet/versions/3"]


@pytest.mark.parametrize("state", ["LOADING", "UNLOADING", "END", "START"])
def test_not_ready_in_any_other_state_although_the_status_call_answers_200(server, state):
    StandIn.states = {"3": state}
    result = probe(server.server_address[1])
    assert result.returncode == 1
    assert f"resnet version 3 is {state}, not AVAILABLE" in result.stdout


def test_not_ready_when_the_server_does_not_manage_the_pinned_version(server):
    StandIn.states = {"2": "AVAILABLE"}
    result = probe(server.server_address[1])
    assert result.returncode == 1 and "404" in result.stdout


def test_not_ready_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = probe(port)
    assert result.returncode == 1 and f"does not accept connections on port {port}" in result.stdout
