"""Replay the golden set against TF Serving's REST predict API: the cluster must serve what was reviewed.

The golden set (the overlay's golden-set ConfigMap: expected.json and images.json, rendered by `make bump`
from the validation report) holds images and the answers validation recorded for exactly the pinned version.
This script sends each image in a request of its own, then the images in one batched request, and exits 0
only when every answer matches: for an image marked stable, the same top-1 class and label; for every image,
the same label for each class, and every probability within the target's tolerance (a class may leave the
top-k only if its recorded probability was within tolerance of the served k-th). Otherwise it exits 1, naming
each differing image with its expected and served answers. Standard library only: it runs on a stock python
image, as the Argo CD PostSync Job, and locally through `make smoke URL=...` (tools/goldenset/replay.py).

    python smoke_test.py --url http://tf-serving:8501 --model resnet --version 2 --golden /etc/golden-set

Every flag has an environment variable (below), so a Job sets them all without arguments. Connection errors
and 404/429/502/503/504 are retried until the deadline (a pod still serving the old version answers 404 for
the new one); a wrong answer fails at once.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

RETRIED_STATUS = (404, 429, 502, 503, 504)
EXPECTED_FILE, IMAGES_FILE = "expected.json", "images.json"  # tools/paths.py GOLDEN_EXPECTED_FILE, GOLDEN_IMAGES_FILE
FORMAT = 1


class Failed(Exception):
    """The smoke test failed; the message says why (one line first, details after)."""


# ---- the golden set ----

def load_golden(directory: str) -> tuple[dict, list[tuple[dict, bytes]]]:
    """(expected.json, [(image entry, image bytes)]) from the golden-set directory; Failed when unusable."""
    try:
        with open(os.path.join(directory, EXPECTED_FILE), encoding="utf-8") as f:
            expected = json.load(f)
        with open(os.path.join(directory, IMAGES_FILE), encoding="utf-8") as f:
            data = json.load(f)["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Failed(f"cannot read the golden set in {directory}: {exc}") from None
    if not isinstance(expected, dict) or expected.get("format") != FORMAT:
        raise Failed(f"{directory}/{EXPECTED_FILE} is not a golden set of format {FORMAT}")
    if not expected.get("images"):
        raise Failed(f"no golden set for {expected.get('model')} v{expected.get('version')} "
                     f"({expected.get('layout')}) in {directory}: {expected.get('note', 'it holds no images')}")
    images = []
    for entry in expected["images"]:
        name = entry.get("name")
        try:
            raw = base64.b64decode(data[name], validate=True)
        except (KeyError, TypeError, ValueError):
            raise Failed(f"golden image {name!r} is missing from {IMAGES_FILE} or not base64") from None
        if hashlib.sha256(raw).hexdigest() != entry.get("sha256"):
            raise Failed(f"golden image {name!r} does not match its sha256 in {EXPECTED_FILE}")
        images.append((entry, raw))
    return expected, images


# ---- comparing one answer ----

def shown(row: dict) -> str:
    """An answer in one line: `label (class) p, ...`."""
    try:
        return ", ".join(f"{label} ({c}) {p:.6g}"
                         for c, label, p in zip(row["classes"], row["labels"], row["probabilities"]))
    except (KeyError, TypeError, ValueError):
        return json.dumps(row)[:300]


def shape_problem(row, k: int) -> str | None:
    """None when `row` is one image's valid top-k answer; else what is wrong with it."""
    if not isinstance(row, dict):
        return f"expected a mapping of outputs, got {json.dumps(row)[:200]}"
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


def difference(entry: dict, row, tolerance: float) -> str | None:
    """None when the served `row` matches the recorded answer in `entry` within `tolerance`; else how not."""
    k = len(entry["classes"])
    problem = shape_problem(row, k)
    if problem:
        return problem
    want = dict(zip(entry["classes"], zip(entry["labels"], entry["probabilities"])))
    got = dict(zip(row["classes"], zip(row["labels"], row["probabilities"])))
    if entry.get("stable") and row["classes"][0] != entry["classes"][0]:
        return (f"top-1 is {row['labels'][0]} ({row['classes'][0]}), recorded {entry['labels'][0]} "
                f"({entry['classes'][0]})")
    for c in entry["classes"]:
        if c in got and got[c][0] != want[c][0]:
            return f"class {c} is labelled {got[c][0]!r}, recorded {want[c][0]!r}"
    served_floor, recorded_floor = row["probabilities"][-1], entry["probabilities"][-1]
    for c in entry["classes"]:
        label, p = want[c]
        if c in got:
            if abs(got[c][1] - p) > tolerance:
                return f"{label} ({c}) has probability {got[c][1]:.6g}, recorded {p:.6g} (tolerance {tolerance:g})"
        elif p > served_floor + tolerance:
            return f"{label} ({c}) left the top-{k}, recorded with probability {p:.6g} (tolerance {tolerance:g})"
    for c, (label, p) in got.items():
        if c not in want and p > recorded_floor + tolerance:
            return f"{label} ({c}) entered the top-{k} with probability {p:.6g} (tolerance {tolerance:g})"
    return None


# ---- talking to TF Serving ----

def request(url: str, body: bytes, timeout: float):
    """(status, parsed JSON or text) of one POST; raises OSError when nothing answered."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def call(url: str, body: bytes, timeout: float, stop: float, what: str):
    """The answer of a 200, retrying no answer and RETRIED_STATUS until `stop`; Failed otherwise."""
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
            late = " (deadline reached)" if retry else ""
            raise Failed(f"{what}: POST {url} failed after {attempt} attempt(s){late}: {problem}")
        print(f"attempt {attempt} ({what}): {problem}; retrying", file=sys.stderr, flush=True)
        time.sleep(max(0.0, min(2.0 ** min(attempt, 5) * 0.25, stop - time.monotonic())))


def predictions(answer, n: int, what: str) -> list:
    if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
        raise Failed(f"{what}: no 'predictions' list in the answer: {json.dumps(answer)[:200]}")
    if len(answer["predictions"]) != n:
        raise Failed(f"{what}: {n} image(s) sent, {len(answer['predictions'])} prediction(s) answered")
    return answer["predictions"]


def replay(base_url: str, model: str, version: int, golden_dir: str, deadline: float, timeout: float,
           tolerance: float | None = None, min_margin: float | None = None) -> str:
    """The success message; raises Failed naming every differing image (the first one first)."""
    expected, images = load_golden(golden_dir)
    if (expected.get("model"), expected.get("version")) != (model, version):
        raise Failed(f"the golden set in {golden_dir} is of {expected.get('model')} v{expected.get('version')}, "
                     f"but {model} v{version} is checked: the overlay and its golden set disagree")
    tolerance = float(expected["tolerance"]["probability"] if tolerance is None else tolerance)
    if min_margin is not None:  # an override re-decides which images are stable enough for the top-1 check
        images = [({**entry, "stable": entry.get("margin") is not None and entry["margin"] >= min_margin}, raw)
                  for entry, raw in images]
    url = f"{base_url.rstrip('/')}/v1/models/{model}/versions/{version}:predict"
    stop = time.monotonic() + deadline

    def body(batch) -> bytes:
        return json.dumps({"instances": [{"b64": base64.b64encode(raw).decode()} for _, raw in batch]}).encode()

    failures = []
    for entry, raw in images:
        what = f"image {entry['name']}"
        [row] = predictions(call(url, body([(entry, raw)]), timeout, stop, what), 1, what)
        problem = difference(entry, row, tolerance)
        if problem:
            failures.append(f"{entry['name']}: {problem}\n    expected: {shown(entry)}\n    served:   {shown(row)}")
    batch = images[:max(1, int(expected.get("max_batch_size") or len(images)))]
    what = f"one request of {len(batch)} images"
    for (entry, _), row in zip(batch, predictions(call(url, body(batch), timeout, stop, what), len(batch), what)):
        problem = difference(entry, row, tolerance)
        if problem:
            failures.append(f"{entry['name']} (in the batch of {len(batch)}): {problem}\n"
                            f"    expected: {shown(entry)}\n    served:   {shown(row)}")
    if failures:
        first = failures[0].split("\n")[0]
        raise Failed(f"{len(failures)} answer(s) differ from the golden set of {model} v{version} "
                     f"({expected.get('layout')}, target {expected.get('target')}); first: {first}\n"
                     + "\n".join(failures))
    unstable = sum(1 for entry, _ in images if not entry.get("stable"))
    return (f"smoke test passed: {model} version {version} answered all {len(images)} golden images "
            f"(one by one and in one request of {len(batch)}) as recorded, within {tolerance:g}"
            + (f"; {unstable} image(s) with a top-1 lead too small to check top-1" if unstable else ""))


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=env("SMOKE_URL"), help="TF Serving REST base URL (env SMOKE_URL)")
    p.add_argument("--model", default=env("MODEL_NAME"), help="model name (env MODEL_NAME)")
    p.add_argument("--version", type=int, default=env("MODEL_VERSION"), help="pinned version (env MODEL_VERSION)")
    p.add_argument("--golden", default=env("SMOKE_GOLDEN_DIR"),
                   help=f"directory with {EXPECTED_FILE} and {IMAGES_FILE} (env SMOKE_GOLDEN_DIR)")
    p.add_argument("--tolerance", type=float, default=env("SMOKE_PROBABILITY_TOLERANCE") or None,
                   help="largest probability difference (env SMOKE_PROBABILITY_TOLERANCE; default: the golden set's)")
    p.add_argument("--min-top1-margin", type=float, default=env("SMOKE_MIN_TOP1_MARGIN") or None,
                   help="top-1 lead needed for the top-1 check (env SMOKE_MIN_TOP1_MARGIN; default: the golden set's)")
    p.add_argument("--deadline", type=float, default=float(env("SMOKE_DEADLINE_SECONDS", "180")),
                   help="seconds to keep retrying an unavailable server (env SMOKE_DEADLINE_SECONDS)")
    p.add_argument("--timeout", type=float, default=float(env("SMOKE_REQUEST_TIMEOUT_SECONDS", "60")),
                   help="seconds per request (env SMOKE_REQUEST_TIMEOUT_SECONDS)")
    args = p.parse_args(argv)
    missing = [name for name in ("url", "model", "version", "golden") if getattr(args, name) in (None, "")]
    if missing:
        p.error(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)}")
    try:
        message = replay(args.url, args.model, int(args.version), args.golden, args.deadline, args.timeout,
                         None if args.tolerance is None else float(args.tolerance),
                         None if args.min_top1_margin is None else float(args.min_top1_margin))
    except Failed as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(message, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
