"""One cold start, measured inside a fresh process (run by `tools bench` through tools.proc.run):

    python -m tools.bench.coldstart <version dir> (--warmup | --no-warmup) [--steady N]

Imports TensorFlow, loads the SavedModel, optionally replays its warmup records the way TF Serving does
before it marks a version AVAILABLE, then times the first request (one photo-like JPEG that is not among the
warmup images) and N more of the same. Prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def measure(version_dir: str, warmup: bool, steady: int) -> dict:
    began = time.perf_counter()
    import tensorflow as tf

    from export.warmup import read_warmup
    from tools import paths
    from tools.client.images import sample_jpeg

    imported = time.perf_counter()
    info = json.loads(open(os.path.join(version_dir, paths.ASSETS_EXTRA_DIR, paths.EXPORT_INFO_FILE)).read())
    h, w = info["input_size"]
    request = tf.constant([sample_jpeg(h * 3 // 2 + 7, w * 4 // 3 + 5, seed=1234)])

    start = time.perf_counter()
    loaded = tf.saved_model.load(version_dir)
    serve = loaded.signatures[paths.SERVING_SIGNATURE]
    load_s = time.perf_counter() - start

    warmup_s, records = 0.0, 0
    if warmup:
        start = time.perf_counter()
        for log in read_warmup(os.path.join(version_dir, paths.ASSETS_EXTRA_DIR, paths.WARMUP_FILE)):
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in log.predict_log.request.inputs.items()}
            serve(**inputs)
            records += 1
        warmup_s = time.perf_counter() - start

    start = time.perf_counter()
    serve(images=request)["classes"].numpy()
    first_ms = (time.perf_counter() - start) * 1000
    steady_ms = []
    for _ in range(steady):
        start = time.perf_counter()
        serve(images=request)["classes"].numpy()
        steady_ms.append((time.perf_counter() - start) * 1000)
    return {
        "warmup": warmup,
        "import_s": imported - began,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "warmup_records": records,
        "first_ms": first_ms,
        "steady_ms": steady_ms,
        "steady_median_ms": statistics.median(steady_ms),
        "first_over_steady": first_ms / statistics.median(steady_ms),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.coldstart", description=__doc__.split("\n\n")[0])
    p.add_argument("version_dir")
    p.add_argument("--warmup", action=argparse.BooleanOptionalAction, required=True)
    p.add_argument("--steady", type=int, default=5)
    args = p.parse_args(argv)
    print(json.dumps(measure(args.version_dir, args.warmup, max(1, args.steady))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
