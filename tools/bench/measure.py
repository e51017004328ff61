"""The benchmark's measurements, one function per report section; each returns plain JSON-able data."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tools.bench.timing import interleaved, ratios, repeats_for, spread, tf_peak_bytes
from tools.client.images import sample_jpeg


@dataclass(frozen=True)
class Plan:
    """How much to measure. The default fits `make bench` in a few minutes on 2 cores; QUICK only exercises
    every code path (its numbers mean nothing)."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    rounds: int = 7  # interleaved rounds = ratio pairs per comparison (the issue asks for at least 5)
    sample_seconds: float = 0.4  # a sample repeats a call until about this long (batch 1 is ~60 ms)
    large_count: int = 4
    large_size: tuple[int, int] = (3000, 4000)  # height, width: a 12 MP phone photo
    large_rounds: int = 5
    cold_rounds: int = 5  # fresh processes with warmup: the sample of the first-request target
    # Of those rounds, how many also run a process without warmup, the contrast (what warmup saves: ~35x on the first
    # request), which no target reads; ~10 s of ResNet50 cold start each.
    cold_contrast_rounds: int = 3
    cold_steady: int = 5
    # issue 16: oneDNN on/off/bf16, one fresh process per setting per round (tools/bench/onednn_compare.py)
    onednn_rounds: int = 3
    onednn_samples: int = 2  # interleaved samples of servable and bare per batch size inside one process


QUICK = Plan(batch_sizes=(1, 2), rounds=2, sample_seconds=0.01, large_count=2, large_size=(480, 640),
             large_rounds=2, cold_rounds=1, cold_contrast_rounds=1, cold_steady=2, onednn_rounds=1, onednn_samples=1)

Progress = Callable[[str], None]


def client_images(input_size: tuple[int, int], count: int, seed: int = 0) -> list[bytes]:
    """Photo-like JPEGs from the model's input size to 1.4x it: what a client that resizes before sending
    (as the original tutorial's client did) sends. The resize in the graph always has work to do."""
    h, w = input_size
    shapes = [(h, w), (round(h * 1.15), round(w * 1.15)), (round(h * 1.3), round(w * 1.15)),
              (round(h * 1.15), round(w * 1.4))]
    return [sample_jpeg(*shapes[i % len(shapes)], seed=seed + i) for i in range(count)]


def throughput(v, plan: Plan, progress: Progress) -> dict:
    """Servable vs bare model (folded, as served, and as trained) vs the tutorial's servable, interleaved, per
    batch size."""
    import tensorflow as tf

    batches = []
    for b in plan.batch_sizes:
        images = tf.constant(client_images(v.input_size, b, seed=100))
        pixels = v.preprocess(images)
        fns = {
            "bare": lambda: v.bare(pixels),
            "bare_as_trained": lambda: v.bare_as_trained(pixels),
            "servable": lambda: v.servable.serve(images),
            "tutorial": lambda: v.tutorial(images),
            "preprocess": lambda: v.preprocess(images),
            "tutorial_preprocess": lambda: v.tutorial_preprocess(images),
        }
        for fn in fns.values():  # the first calls optimize the graphs and create the kernels
            fn()
            fn()
        repeats = repeats_for(fns["servable"], plan.sample_seconds)
        progress(f"throughput: batch {b}, {plan.rounds} interleaved rounds of {repeats} call(s) per variant")
        seconds = interleaved(fns, plan.rounds, repeats)
        per_image_ms = {k: spread([s * 1000 / b for s in vals]) for k, vals in seconds.items()}
        batches.append({
            "batch_size": b,
            "repeats": repeats,
            "seconds": seconds,
            "images_per_s": {k: spread([b / s for s in vals]) for k, vals in seconds.items() if "preprocess" not in k},
            "ms_per_image": per_image_ms,
            # throughput ratio = inverse time ratio, per round
            "servable_vs_bare": _ratio(ratios(seconds["bare"], seconds["servable"]), seconds["bare"],
                                       seconds["servable"]),
            "servable_vs_tutorial": _ratio(ratios(seconds["tutorial"], seconds["servable"]), seconds["tutorial"],
                                           seconds["servable"]),
            # what folding the batch normalizations gains (export/fold.py): the model as served / as trained
            "folded_vs_as_trained": _ratio(ratios(seconds["bare_as_trained"], seconds["bare"]),
                                           seconds["bare_as_trained"], seconds["bare"]),
        })
    return {"images": "photo-like JPEGs from 1x to 1.4x the model input size", "batches": batches}


def _ratio(values: list[float], slow: list[float] | None = None, fast: list[float] | None = None) -> dict:
    """Per-round ratios with their spread; with the two samples' lists also the ratio of their fastest
    samples, the estimate least disturbed by other work on a shared machine (noise only adds time)."""
    out = {**spread(values), "values": values}
    if slow is not None and fast is not None:
        out["of_fastest"] = min(slow) / min(fast)
    return out


def large_inputs(v, plan: Plan, progress: Progress) -> dict:
    """Phone-sized JPEGs with and without decode-time downscaling (and the tutorial's full decode)."""
    import tensorflow as tf

    from export import preprocess

    h, w = plan.large_size
    progress(f"large inputs: generating {plan.large_count} photo-like {w}x{h} JPEGs")
    ratio_index = int(preprocess.jpeg_ratio(tf.constant([h, w], tf.int64), v.input_size).numpy())
    scale = preprocess.JPEG_RATIOS[ratio_index]
    data = [sample_jpeg(h, w, seed=500 + i) for i in range(plan.large_count)]
    images = tf.constant(data)
    fast_pre = tf.function(v.fast_decode.preprocess, input_signature=[tf.TensorSpec([None], tf.string)])
    full_pre = tf.function(v.full_decode.preprocess, input_signature=[tf.TensorSpec([None], tf.string)])
    fns = {
        "fast_decode": lambda: v.fast_decode.serve(images),
        "full_decode": lambda: v.full_decode.serve(images),
        "tutorial": lambda: v.tutorial(images),
        # Decoding and resizing alone: what the downscaling changes, without the model's fixed cost.
        "fast_preprocess": lambda: fast_pre(images),
        "full_preprocess": lambda: full_pre(images),
        # issue 16, the floor of the 2x target: libjpeg's least work per file is the 1/8-scale decode (the entropy
        # decoding of the whole file, then a DC-only inverse DCT: libjpeg-turbo jidctred.c jpeg_idct_1x1), timed
        # alone; and the full-size decode alone, so the full path splits into decode and resize.
        "decode_floor": tf.function(lambda: [tf.io.decode_jpeg(images[i], channels=3, ratio=8)
                                             for i in range(len(data))]),
        "decode_full": tf.function(lambda: [tf.io.decode_jpeg(images[i], channels=3) for i in range(len(data))]),
        # That decode at the scale the export picks, then the export's own (antialiased) resize, nothing else: the
        # floor of any downscaled path that keeps the answers antialiased. fast_preprocess minus this is what the
        # header checks and the EXIF look cost.
        "decode_resize_floor": tf.function(lambda: [
            preprocess.resize(tf.io.decode_jpeg(images[i], channels=3, ratio=scale), v.input_size)
            for i in range(len(data))]),
    }
    for fn in fns.values():
        fn()
    progress(f"large inputs: {plan.large_rounds} interleaved rounds")
    seconds = interleaved(fns, plan.large_rounds)
    n = plan.large_count
    peak = {k: tf_peak_bytes(fns[k]) for k in ("fast_decode", "full_decode", "tutorial")}

    size, limit = v.input_size, v.servable.max_image_pixels
    decode = {flag: tf.function(lambda s, f=flag: preprocess.decode_batch(s, size, limit, f)) for flag in (True, False)}
    px_fast, px_full = decode[True](images).numpy(), decode[False](images).numpy()
    p_fast = v.servable.predict_pixels(tf.constant(px_fast)).numpy()
    p_full = v.servable.predict_pixels(tf.constant(px_full)).numpy()
    tutorial_top1 = v.tutorial(images)["classes"].numpy()[:, 0]
    return {
        "count": n,
        "size": [h, w],
        "jpeg_mb": [len(d) / 1e6 for d in data],
        "decode_scale": f"1/{preprocess.JPEG_RATIOS[ratio_index]}",
        "seconds": seconds,
        "ms_per_image": {k: spread([s * 1000 / n for s in vals]) for k, vals in seconds.items()},
        "speedup": _ratio(ratios(seconds["full_preprocess"], seconds["fast_preprocess"]), seconds["full_preprocess"],
                          seconds["fast_preprocess"]),
        "speedup_end_to_end": _ratio(ratios(seconds["full_decode"], seconds["fast_decode"]), seconds["full_decode"],
                                     seconds["fast_decode"]),
        # The most decode + resize could gain at any output scale: full-size path / the bare 1/8 decode.
        "speedup_ceiling": _ratio(ratios(seconds["full_preprocess"], seconds["decode_floor"]),
                                  seconds["full_preprocess"], seconds["decode_floor"]),
        "speedup_ceiling_antialiased": _ratio(ratios(seconds["full_preprocess"], seconds["decode_resize_floor"]),
                                              seconds["full_preprocess"], seconds["decode_resize_floor"]),
        "tutorial_over_fast": _ratio(ratios(seconds["tutorial"], seconds["fast_decode"]), seconds["tutorial"],
                                     seconds["fast_decode"]),
        "peak_mb": {k: (None if b is None else b / 1e6) for k, b in peak.items()},
        "top1_fast": p_fast.argmax(axis=1).tolist(),
        "top1_full": p_full.argmax(axis=1).tolist(),
        "top1_tutorial": tutorial_top1.tolist(),
        "top1_same": bool((p_fast.argmax(axis=1) == p_full.argmax(axis=1)).all()),
        "top1_prob_full": p_full.max(axis=1).tolist(),
        "max_abs_prob_diff": float(np.abs(p_fast - p_full).max()),
        "pixel_mean_abs_diff": float(np.abs(px_fast - px_full).mean()),
        "pixel_max_abs_diff": float(np.abs(px_fast - px_full).max()),
    }


def export_and_cold_start(config, plan: Plan, progress: Progress, repo_root: Path) -> dict:
    """Time export_model (both layouts, as `make export`), then cold starts of its channels_last version,
    each in a fresh process, alternating without and with warmup."""
    from export.api import export_model
    from tools import proc

    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        progress("export: export_model of every layout into a temporary directory (what `make export` runs)")
        start = time.perf_counter()
        dirs = export_model(config, output_dir=tmp, verbose=False)
        export_s = time.perf_counter() - start
        size_mb = sum(f.stat().st_size for d in dirs.values() for f in d.rglob("*") if f.is_file()) / 1e6
        runs: list[dict] = []
        version_dir = dirs.get("channels_last") or next(iter(dirs.values()))
        for r in range(plan.cold_rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            for warm in order if r < plan.cold_contrast_rounds else [True]:
                progress(f"cold start: round {r + 1}/{plan.cold_rounds}, {'with' if warm else 'without'} warmup, "
                         "fresh process")
                result = proc.run([sys.executable, "-m", "tools.bench.coldstart", str(version_dir),
                                   "--warmup" if warm else "--no-warmup", "--steady", str(plan.cold_steady)],
                                  cwd=repo_root, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, echo=False, timeout=600)
                runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(warm: bool) -> dict:
        mine = [r for r in runs if r["warmup"] == warm]
        return {key: spread([r[key] for r in mine]) for key in
                ("import_s", "load_s", "warmup_s", "first_ms", "steady_median_ms", "first_over_steady")}

    return {
        "export_s": export_s,
        "export_layouts": sorted(dirs),
        "export_mb": size_mb,
        "cold_layout": version_dir.parent.name,
        "runs": runs,
        "no_warmup": summary(False),
        "warmup": summary(True),
    }


def time_check(repo_root: Path, progress: Progress) -> dict:
    """How long `make check` takes (`python -m tools check`), or why it was not timed."""
    from tools import proc

    if not (Path(repo_root) / "tools" / "check" / "cli.py").is_file():
        return {"available": False, "note": "not available yet (tools/check does not exist)"}
    progress("check: python -m tools check")
    start = time.perf_counter()
    result = proc.run([sys.executable, "-m", "tools", "check"], cwd=repo_root, check=False, echo=False, timeout=900)
    seconds = time.perf_counter() - start
    lines = [ln.strip() for ln in (result.stdout + "\n" + result.stderr).splitlines() if ln.strip()]
    summary = [ln for ln in lines if "passed" in ln or "failed" in ln or ln.startswith("error")]
    return {"available": True, "seconds": seconds, "exit_status": result.returncode,
            "last_line": (summary or lines or [""])[-1]}
