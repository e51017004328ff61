"""Argo CD PostSync smoke test: one generated JPEG to TF Serving's REST predict API of the pinned version.

Exits 0 when the answer is a valid top-k response (classes, probabilities and labels of length k,
probabilities in [0, 1] and descending), 1 otherwise, so a bad rollout fails the sync. Standard library
only: it runs on a stock python image. Settings come from flags or, in the Job, from the environment:

    python smoke_test.py --url http://tf-serving:8501 --model resnet --version 2 [--top-k 5] [--deadline 180]

Without --top-k (env MODEL_TOP_K), k is what the version's own signature declares (its metadata).
Connection errors and 404/429/502/503/504 are retried until the deadline (a pod that still serves the old
version answers 404 for the new one); a wrong answer fails at once.
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

RETRIED_STATUS = (404, 429, 502, 503, 504)


# ---- a baseline JPEG, generated here so the Job needs no image file and no imaging library ----

def _bits_writer():
    out, acc, n = bytearray(), 0, 0

    def write(value: int, length: int):
        nonlocal acc, n
        for i in range(length - 1, -1, -1):
            acc = (acc << 1) | ((value >> i) & 1)
            n += 1
            if n == 8:
                out.append(acc)
                if acc == 0xFF:
                    out.append(0)  # byte stuffing: 0xFF in entropy-coded data is followed by 0x00
                acc, n = 0, 0

    def finish() -> bytes:
        if n:
            write((1 << (8 - n)) - 1, 8 - n)  # pad the last byte with 1 bits
        return bytes(out)

    return write, finish


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def make_jpeg(width: int = 96, height: int = 96) -> bytes:
    """A colourful mosaic of flat 8x8 blocks as a baseline JFIF JPEG (YCbCr 4:4:4).

    Flat blocks have a DC coefficient only, so a 12-symbol DC table and a 1-symbol AC table (end of
    block) are complete Huffman tables, and no DCT is needed: DC = 8 * (sample - 128) per block.
    """
    if width % 8 or height % 8:
        raise ValueError("width and height must be multiples of 8")
    dc_codes = {cat: (cat, 4) for cat in range(12)}  # canonical: twelve 4-bit codes 0000..1011
    eob_code = (0, 1)
    write, finish = _bits_writer()
    previous = [0, 0, 0]
    for by in range(height // 8):
        for bx in range(width // 8):
            hue = (bx * 37 + by * 91) % 360 / 60.0
            x = 1 - abs(hue % 2 - 1)
            r, g, b = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(hue) % 6]
            light = 0.35 + 0.6 * ((bx + by) % 5) / 4
            r, g, b = (255 * light * c for c in (r, g, b))
            ycc = (0.299 * r + 0.587 * g + 0.114 * b,
                   128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                   128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
            for c, sample in enumerate(ycc):
                dc = 8 * (min(255, max(0, round(sample))) - 128)
                diff, previous[c] = dc - previous[c], dc
                cat = abs(diff).bit_length()
                write(*dc_codes[cat])
                if cat:
                    write(diff if diff > 0 else diff + (1 << cat) - 1, cat)
                write(*eob_code)
    header = b"\xff\xd8" + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    header += _segment(0xDB, bytes([0]) + bytes([1] * 64))  # quantization table 0: all ones
    components = b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    header += _segment(0xC0, bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + components)
    dc_bits = [0] * 16
    dc_bits[3] = 12
    header += _segment(0xC4, bytes([0x00]) + bytes(dc_bits) + bytes(range(12)))
    ac_bits = [0] * 16
    ac_bits[0] = 1
    header += _segment(0xC4, bytes([0x10]) + bytes(ac_bits) + bytes([0x00]))
    header += _segment(0xDA, b"\x03" + b"".join(bytes([i, 0x00]) for i in (1, 2, 3)) + b"\x00\x3f\x00")
    return header + finish() + b"\xff\xd9"


# ---- the check ----

def check_response(answer, k: int) -> str | None:
    """None when `answer` is TF Serving's row-format answer for one image with a valid top-k; else why not."""
    if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
        return f"no 'predictions' list in the answer: {json.dumps(answer)[:200]}"
    predictions = answer["predictions"]
    if len(predictions) != 1 or not isinstance(predictions[0], dict):
        return f"expected one prediction (a mapping) for one image, got {json.dumps(predictions)[:200]}"
    row = predictions[0]
    for key in ("classes", "probabilities", "labels"):
        if not isinstance(row.get(key), list) or len(row[key]) != k:
            got = f"{len(row[key])} values" if isinstance(row.get(key), list) else "nothing"
            return f"'{key}' must hold {k} values (top_k), got {got}"
    classes, probabilities, labels = row["classes"], row["probabilities"], row["labels"]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes):
        return f"'classes' must be non-negative integers, got {classes}"
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p) and 0 <= p <= 1
               for p in probabilities):
        return f"'probabilities' must lie in [0, 1], got {probabilities}"
    if any(a < b for a, b in zip(probabilities, probabilities[1:])):
        return f"'probabilities' must be in descending order, got {probabilities}"
    if not all(isinstance(label, str) and label for label in labels):
        return f"'labels' must be non-empty strings, got {labels}"
    return None


def request(url: str, body: bytes | None, timeout: float):
    """(status, parsed JSON or text) of one GET (no body) or POST; raises OSError when nothing answered."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def call(url: str, body: bytes | None, timeout: float, stop: float):
    """The answer of a 200, retrying no answer and RETRIED_STATUS until `stop`; SystemExit(reason) otherwise."""
    attempt = 0
    while True:
        attempt += 1
        try:
            status, answer = request(url, body, timeout)
            if status == 200:
                return answer
            problem, retry = f"HTTP {status}: {str(answer)[:300]}", status in RETRIED_STATUS
        except OSError as exc:  # connection refused or reset, timed out, name not resolved
            problem, retry = f"no answer: {getattr(exc, 'reason', exc)}", True
        if not retry or time.monotonic() >= stop:
            method = "GET" if body is None else "POST"
            raise SystemExit(f"smoke test FAILED after {attempt} attempt(s): {method} {url}: {problem}")
        print(f"attempt {attempt}: {problem}; retrying", file=sys.stderr, flush=True)
        time.sleep(max(0.0, min(2.0 ** min(attempt, 5) * 0.25, stop - time.monotonic())))


def declared_top_k(metadata) -> int:
    """k as the version's own serving signature declares it (the static last dimension of `classes`)."""
    try:
        outputs = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
        k = int(outputs["classes"]["tensor_shape"]["dim"][-1]["size"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise SystemExit(f"smoke test FAILED: no top-k in the model's metadata: {json.dumps(metadata)[:300]}")
    if k < 1:
        raise SystemExit(f"smoke test FAILED: the serving signature declares no fixed k (got {k}); set MODEL_TOP_K")
    return k


def run(base_url: str, model: str, version: int, k: int | None, deadline: float, timeout: float) -> str:
    """The success message; raises SystemExit(reason) on failure. k None: read it from the model metadata."""
    base = f"{base_url.rstrip('/')}/v1/models/{model}/versions/{version}"
    stop = time.monotonic() + deadline
    if k is None:
        k = declared_top_k(call(f"{base}/metadata", None, timeout, stop))
    body = json.dumps({"instances": [{"b64": base64.b64encode(make_jpeg()).decode()}]}).encode()
    answer = call(f"{base}:predict", body, timeout, stop)
    problem = check_response(answer, k)
    if problem:
        raise SystemExit(f"smoke test FAILED: POST {base}:predict: {problem}")
    row = answer["predictions"][0]
    top = ", ".join(f"{label} ({p:.3f})" for label, p in zip(row["labels"], row["probabilities"]))
    return f"smoke test passed: {model} version {version} answered top-{k}: {top}"


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=env("SMOKE_URL"), help="TF Serving REST base URL (env SMOKE_URL)")
    p.add_argument("--model", default=env("MODEL_NAME"), help="model name (env MODEL_NAME)")
    p.add_argument("--version", type=int, default=env("MODEL_VERSION"), help="pinned version (env MODEL_VERSION)")
    p.add_argument("--top-k", type=int, default=env("MODEL_TOP_K") or None,
                   help="expected k (env MODEL_TOP_K; default: what the version's signature declares)")
    p.add_argument("--deadline", type=float, default=float(env("SMOKE_DEADLINE_SECONDS", "180")),
                   help="seconds to keep retrying an unavailable server (env SMOKE_DEADLINE_SECONDS)")
    p.add_argument("--timeout", type=float, default=float(env("SMOKE_REQUEST_TIMEOUT_SECONDS", "60")),
                   help="seconds per request (env SMOKE_REQUEST_TIMEOUT_SECONDS)")
    args = p.parse_args(argv)
    missing = [name for name in ("url", "model", "version") if getattr(args, name) in (None, "")]
    if missing:
        p.error(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}")
    k = None if args.top_k is None else int(args.top_k)
    print(run(args.url, args.model, int(args.version), k, args.deadline, args.timeout), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
