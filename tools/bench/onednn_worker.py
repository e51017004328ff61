"""One process of the oneDNN comparison (tools/bench/onednn_compare.py): started with one setting's environment,
it times the servable and the bare model at each batch size and answers the golden set.

    python -m tools.bench.onednn_worker JOB      # JOB: a pickle written by onednn_compare; prints JSON

TensorFlow reads TF_ENABLE_ONEDNN_OPTS and TF_SET_ONEDNN_FPMATH_MODE once per process, so every setting needs its
own process; `--probe` only reports what TensorFlow picked (the "auto" setting: both variables unset).
"""
from __future__ import annotations

import json
import pickle
import statistics
import sys
import time
from pathlib import Path

from tools import onednn


def probe() -> dict:
    import tensorflow as tf  # noqa: F401  (loads the runtime that decides)

    return {"onednn_enabled": onednn.enabled(), "fpmath": onednn.fpmath(), "env": onednn.in_force()}


def measure(job: dict) -> dict:
    import tensorflow as tf

    from tools.bench import variants
    from tools.bench.measure import client_images
    from tools.bench.timing import interleaved, repeats_for
    from tools.goldenset.images import reference_images

    start = time.perf_counter()
    v = variants.build(job["config"])
    build_s = time.perf_counter() - start
    try:
        batches = {}
        for b in job["batch_sizes"]:
            images = tf.constant(client_images(v.input_size, b, seed=100))
            pixels = v.preprocess(images)
            fns = {"servable": lambda: v.servable.serve(images), "bare": lambda: v.bare(pixels)}
            for fn in fns.values():  # the first calls build the kernels (oneDNN primitives are created lazily)
                fn()
                fn()
            repeats = repeats_for(fns["servable"], job["sample_seconds"])
            seconds = interleaved(fns, max(1, job["samples"]), repeats)
            batches[str(b)] = {k: statistics.median(s) for k, s in seconds.items()}
        golden = [i.data for i in reference_images(tuple(v.input_size))]
        out = v.servable.serve(tf.constant(golden))
        rows = [[c.tolist(), p.tolist()] for c, p in zip(out["classes"].numpy(), out["probabilities"].numpy())]
    finally:
        v.close()
    return {**probe(), "build_s": build_s, "seconds": batches, "golden": rows}


def main(argv: list[str] | None = None) -> int:
    onednn.apply_child_env()  # before TensorFlow loads
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--probe":
        print(json.dumps(probe()))
        return 0
    job = pickle.loads(Path(argv[0]).read_bytes())
    print(json.dumps(measure(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
