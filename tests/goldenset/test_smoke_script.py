"""The PostSync smoke-test script on its own: a stock python runs it with a golden set and a stub server.

HTTP behaviour (retries, deadline, errors not retried) against a stub (http.server); how answers are compared
against hand-made answers. The replay against real exports is test_replay.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.goldenset.replay import SCRIPT, load_script
from tools import paths

SCRIPT_PATH = paths.REPO_ROOT / SCRIPT
IMAGES = [b"first image", b"second image"]
ROWS = [{"classes": [3, 1, 2], "labels": ["c", "a", "b"], "probabilities": [0.6, 0.3, 0.05]},
        {"classes": [0, 1, 2], "labels": ["z", "a", "b"], "probabilities": [0.40, 0.399, 0.2]}]


def golden(directory, version=2, images=IMAGES, rows=ROWS, tolerance=1e-3):
    entries = [{"name": f"img-{i}", "sha256": hashlib.sha256(d).hexdigest(), **row,
                "margin": row["probabilities"][0] - row["probabilities"][1],
                "stable": row["probabilities"][0] - row["probabilities"][1] >= 0.01}
               for i, (d, row) in enumerate(zip(images, rows))]
    expected = {"format": 1, "model": "resnet", "version": version, "layout": "channels_last", "target": "cpu",
                "digest": None, "top_k": 3, "tolerance": {"probability": tolerance, "min_top1_margin": 0.01},
                "max_batch_size": 32, "images": entries, "note": "test"}
    (directory / "expected.json").write_text(json.dumps(expected))
    (directory / "images.json").write_text(json.dumps(
        {"format": 1, "images": {f"img-{i}": base64.b64encode(d).decode() for i, d in enumerate(images)}}))
    return directory


class Stub:
    """Answers each predict call by image bytes from `rows` (ROWS by default), after the `failures` error replies
    (each once; the last one forever when `forever`)."""

    def __init__(self, failures=(), rows=None, forever=False):
        self.failures, self.forever, self.requests = list(failures), forever, []
        by_image = dict(zip(IMAGES, rows or ROWS))
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, body))
                if stub.failures:
                    keep = stub.forever and len(stub.failures) == 1
                    status, reply = stub.failures[0] if keep else stub.failures.pop(0)
                else:
                    status = 200
                    reply = {"predictions": [by_image[base64.b64decode(i["b64"])] for i in body["instances"]]}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def smoke(url, golden_dir, *args, env=None):
    argv = [sys.executable, str(SCRIPT_PATH)] + ([] if env else [
        "--url", url, "--model", "resnet", "--version", "2", "--golden", str(golden_dir), "--deadline", "1", *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_matching_answers_pass_one_request_per_image_and_one_batch(tmp_path):
    with Stub() as stub:
        result = smoke(stub.url, golden(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "answered all 2 golden images (one by one and in one request of 2) as recorded, within 0.001" in result.stdout
    assert "1 image(s) with a top-1 lead too small to check top-1" in result.stdout
    assert [(path, len(body["instances"])) for path, body in stub.requests] == \
        [("/v1/models/resnet/versions/2:predict", 1)] * 2 + [("/v1/models/resnet/versions/2:predict", 2)]


def test_settings_from_the_environment_as_in_the_job(tmp_path):
    with Stub() as stub:
        env = {"SMOKE_URL": stub.url, "MODEL_NAME": "resnet", "MODEL_VERSION": "2", "SMOKE_DEADLINE_SECONDS": "1",
               "SMOKE_GOLDEN_DIR": str(golden(tmp_path)), "PATH": "/usr/bin:/bin"}
        result = smoke(stub.url, tmp_path, env=env)
    assert result.returncode == 0, result.stderr


def test_a_wrong_answer_names_the_image_expected_and_served(tmp_path):
    wrong = [ROWS[0], {"classes": [2, 1, 0], "labels": ["b", "a", "z"], "probabilities": [0.5, 0.3, 0.1]}]
    with Stub(rows=wrong) as stub:
        result = smoke(stub.url, golden(tmp_path), "--deadline", "30")
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("smoke test FAILED: 2 answer(s) differ from the golden set of resnet v2 "
                            "(channels_last, target cpu); first: img-1: ")
    assert "expected: z (0) 0.4, a (1) 0.399, b (2) 0.2" in result.stderr
    assert "served:   b (2) 0.5, a (1) 0.3, z (0) 0.1" in result.stderr
    assert "img-1 (in the batch of 2):" in result.stderr


def test_404_is_retried_until_the_deadline_then_fails_saying_so(tmp_path):
    error = {"error": "Servable not found for request: Specific(resnet, 2)"}
    with Stub(failures=[(404, error)], forever=True) as stub:
        result = smoke(stub.url, golden(tmp_path), "--deadline", "1")
    assert result.returncode == 1
    assert "image img-0: POST " in result.stderr and "(deadline reached): HTTP 404" in result.stderr
    assert len(stub.requests) >= 2 and "attempt 1 (image img-0): HTTP 404" in result.stderr


def test_a_pod_still_on_the_old_version_then_the_new_one_passes(tmp_path):
    with Stub(failures=[(404, {"error": "Servable not found"})]) as stub:
        result = smoke(stub.url, golden(tmp_path), "--deadline", "30")
    assert result.returncode == 0, result.stderr
    assert len(stub.requests) == 4  # the 404, then both images, then the batch


def test_an_error_that_is_not_retried_fails_at_once(tmp_path):
    with Stub(failures=[(400, {"error": "JSON Value: ... is not of expected type"})]) as stub:
        result = smoke(stub.url, golden(tmp_path), "--deadline", "30")
    assert result.returncode == 1 and "HTTP 400" in result.stderr and len(stub.requests) == 1


def test_connection_refused_fails_after_the_deadline(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = smoke(f"http://127.0.0.1:{port}", golden(tmp_path), "--deadline", "0.5")
    assert result.returncode == 1 and "no answer: [Errno 111] Connection refused" in result.stderr


def test_missing_settings_are_named():
    result = subprocess.run([sys.executable, str(SCRIPT_PATH)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin"})
    assert result.returncode == 2 and "missing --url, --model, --version, --golden" in result.stderr


@pytest.mark.parametrize("breakage, message", [
    ("placeholder", "no golden set for resnet v2 (channels_last) in"),
    ("other version", "the golden set in"),
    ("tampered image", "golden image 'img-0' does not match its sha256"),
    ("no images file", "cannot read the golden set in"),
])
def test_an_unusable_golden_set_fails_before_any_request(tmp_path, breakage, message):
    golden(tmp_path, version=3 if breakage == "other version" else 2)
    if breakage == "placeholder":
        expected = json.loads((tmp_path / "expected.json").read_text())
        (tmp_path / "expected.json").write_text(json.dumps({**expected, "images": []}))
    elif breakage == "tampered image":
        (tmp_path / "images.json").write_text(json.dumps({"format": 1, "images": {
            "img-0": base64.b64encode(b"other").decode(), "img-1": base64.b64encode(IMAGES[1]).decode()}}))
    elif breakage == "no images file":
        (tmp_path / "images.json").unlink()
    with Stub() as stub:
        result = smoke(stub.url, tmp_path)
    assert result.returncode == 1 and message in result.stderr and stub.requests == []


# ---- the comparison, case by case ----

def entry(classes, probabilities, labels=None, stable=True):
    return {"classes": classes, "probabilities": probabilities, "labels": labels or [f"l{c}" for c in classes],
            "stable": stable}


def row(classes, probabilities, labels=None):
    return {"classes": classes, "probabilities": probabilities, "labels": labels or [f"l{c}" for c in classes]}


@pytest.mark.parametrize("recorded, served, problem", [
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 3], [0.50005, 0.3, 0.1]), None),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 3], [0.502, 0.3, 0.1]), "l1 (1) has probability 0.502"),
    (entry([1, 2, 3], [0.4, 0.3995, 0.1], stable=False), row([2, 1, 3], [0.3999, 0.3996, 0.1]), None),
    (entry([1, 2, 3], [0.4, 0.3995, 0.1]), row([2, 1, 3], [0.3999, 0.3996, 0.1]), "top-1 is l2 (2), recorded l1 (1)"),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 4], [0.5, 0.3, 0.05]), "l3 (3) left the top-3"),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 4, 2], [0.5, 0.35, 0.3]), "l4 (4) entered the top-3"),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 4], [0.5, 0.3, 0.0995]), None),  # a near tie at the k-th
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 3], [0.5, 0.3, 0.1], ["l1", "l3", "l2"]),
     "class 2 is labelled 'l3', recorded 'l2'"),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2], [0.5, 0.3]), "'classes' must hold 3 values (top_k), got 2"),
    (entry([1, 2, 3], [0.5, 0.3, 0.1]), row([1, 2, 3], [0.3, 0.5, 0.1]), "must be in descending order"),
])
def test_difference(recorded, served, problem):
    found = load_script().difference(recorded, served, 1e-3)
    assert (found is None) if problem is None else (problem in found), found
