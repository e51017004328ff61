"""One process of the oneDNN comparison (tools/bench/onednn_compare.py): started with one setting's environment,
it times the servable and the bare model at each batch size and answers the golden set.

    python -m tools.bench.onednn_worker JOB      # JOB: a pickle written by onednn_compare; prints JSON

    python -m tools.bench.onednn_worker --kernels JOB   # one untimed call on the golden set (for ONEDNN_VERBOSE)

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once per process, so every setting needs its own process (bf16, a grappler
rewrite, gets one too, so that all settings are timed alike); `--probe` only reports what TensorFlow picked (the
"auto" setting: the variables unset). `--kernels` answers the golden set once and times nothing: started with
ONEDNN_VERBOSE, its stdout names the kernels that call ran (tools/bench/onednn_kernels.py).
"""
from __future__ import annotations

import json
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools import onednn


def probe() -> dict:
    import tensorflow as tf  # noqa: F401  (loads the runtime that decides)

    return {"onednn_enabled": onednn.enabled(), "math": onednn.math(), "env": onednn.in_force()}


def _build(config, timed: bool = True):
    """The servable and the bare model only (what variants.build makes, without the variants this comparison
    does not time: building ResNet50's graph once more per variant would cost every process seconds). Not
    `timed`: the servable alone."""
    import tensorflow as tf

    from export.api import build_servable, serving_model
    from export.labels import resolve_labels
    from export.source import load_source
    from tools import paths
    from tools.bench.variants import bare_function

    settings = config.model
    source = load_source(settings)
    tmp = Path(tempfile.mkdtemp(prefix=paths.TMP_PREFIX + "bench-labels-"))
    labels = tmp / paths.LABELS_FILE
    labels.write_text("\n".join(resolve_labels(settings.labels, source.num_classes)) + "\n", encoding="utf-8")
    servable = build_servable(serving_model(source, settings)[0], "channels_last", source, settings, labels)
    if not timed:
        return source.input_size, servable, tmp
    shape, activation = [None, *source.input_size, 3], source.info["output_activation"]
    other = _other_fold(source, settings)
    pre = tf.function(servable.preprocess, input_signature=[tf.TensorSpec([None], tf.string)]).get_concrete_function()
    return (source.input_size, servable, bare_function(servable.model, activation, shape),
            None if other is None else bare_function(other, activation, shape), pre, tmp)


def _other_fold(source, settings):
    """The model folded the other way (complete if model.yaml keeps the shifts before residual Adds apart, apart if
    it folds completely): the measurement behind model.fold_batch_norms. None when folding is off."""
    from export import fold
    from tools.config import FOLD_COMPLETE

    if not settings.fold_batch_norms:
        return None
    return fold.fold_batch_norms(source.model, complete=settings.fold_batch_norms != FOLD_COMPLETE)[0]


def measure(job: dict) -> dict:
    from tools import grappler

    # Every call under the setting's rewrite (grappler optimizes a function at its first call, with the call's
    # options): with TFSG_MIXED_PRECISION=bfloat16, TF Serving's --mixed_precision=bfloat16 (tools/grappler.py).
    with grappler.python_calls(bf16=onednn.bf16()):
        return _measure(job)


def kernels(job: dict) -> dict:
    """One call of the servable on the golden set under the setting, nothing timed."""
    import tensorflow as tf

    from tools import grappler
    from tools.goldenset.images import reference_images

    input_size, servable, tmp = _build(job["config"], timed=False)
    try:
        golden = [i.data for i in reference_images(tuple(input_size))]
        with grappler.python_calls(bf16=onednn.bf16()):
            servable.serve(tf.constant(golden))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**probe(), "images": len(golden)}


def _measure(job: dict) -> dict:
    import tensorflow as tf

    from tools.bench.measure import client_images
    from tools.bench.timing import interleaved, repeats_for
    from tools.goldenset.images import reference_images

    start = time.perf_counter()
    input_size, servable, bare, other_fold, pre, tmp = _build(job["config"])
    build_s = time.perf_counter() - start
    try:
        batches = {}
        for b in job["batch_sizes"]:
            images = tf.constant(client_images(input_size, b, seed=100))
            pixels = pre(images)
            fns = {"servable": lambda: servable.serve(images), "bare": lambda: bare(pixels)}
            if other_fold is not None:
                fns["bare_other_fold"] = lambda: other_fold(pixels)
            for fn in fns.values():  # the first call builds the kernels (oneDNN creates its primitives lazily)
                fn()
            fns["bare"]()
            repeats = repeats_for(fns["servable"], job["sample_seconds"])  # the servable's second call
            seconds = interleaved(fns, max(1, job["samples"]), repeats)
            batches[str(b)] = {k: statistics.median(s) for k, s in seconds.items()}
        golden = [i.data for i in reference_images(tuple(input_size))]
        out = servable.serve(tf.constant(golden))
        rows = [[c.tolist(), p.tolist()] for c, p in zip(out["classes"].numpy(), out["probabilities"].numpy())]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**probe(), "build_s": build_s, "seconds": batches, "golden": rows}


def main(argv: list[str] | None = None) -> int:
    onednn.apply_child_env()  # before TensorFlow loads
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--probe":
        print(json.dumps(probe()))
        return 0
    if argv[0] == "--kernels":
        print(json.dumps(kernels(pickle.loads(Path(argv[1]).read_bytes()))))
        return 0
    job = pickle.loads(Path(argv[0]).read_bytes())
    print(json.dumps(measure(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
