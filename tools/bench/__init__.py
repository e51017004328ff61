"""Benchmark the servable and write a report: how much the in-graph decoding costs, how slow the first
request is, how phone-sized photos behave, how long export and check take.

    make bench                                  # = python -m tools bench
    python -m tools bench --out /tmp/bench      # somewhere else
    python -m tools bench --quick               # every code path with tiny counts (numbers mean nothing)

Measures the default model of model.yaml (channels_last, built in memory as export/ builds it):
servable vs bare model vs the original tutorial's servable at batch 1/8/32; phone-sized JPEGs with and
without decode-time downscaling (time per image, peak allocator memory, top-1); cold start in fresh
processes with and without the warmup records; export time; `make check` time; the machine and the
fraction of its FP32 peak the bare model reaches. Every comparison runs A and B interleaved in one process,
median of at least five pairs with the spread. Writes <out>/report.md, report.json and PNG plots, where
<out> is build/bench by default. Library: `run_bench(config, out_dir)`.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tools import paths
from tools.progress import Progress
from tools.bench.measure import QUICK, Plan
from tools.config import Config
from tools.errors import UserError

SECTIONS = ("throughput", "large", "coldstart", "check", "onednn")

# The issue's targets, in one place: the report and the verdicts read them from here.
TARGETS = {
    "servable_vs_bare_b32": 0.95,
    "servable_vs_bare_b1": 0.90,
    "servable_vs_tutorial": 1.0,
    "large_speedup": 2.0,
    "warm_first_over_steady": 1.5,
    "bench_seconds": 360.0,
}


def run_bench(config: Config, out_dir: Path | None = None, *, quick: bool = False,
              sections: tuple[str, ...] = SECTIONS, repo_root: Path = paths.REPO_ROOT, progress: bool = True,
              layout: str = "channels_last", docs_dir: Path | None = None, rounds: int | None = None,
              onednn_rounds: int | None = None) -> dict:
    """Measure, then write report.md, report.json and the plots into out_dir; returns the report data.

    `rounds`: interleaved rounds of the throughput and phone-photo sections (default 7 and 5). Seven rounds resolve
    about 1-2% on a 2-core machine; a difference below that (the servable against the tutorial's at batch 1 is
    0.3%) needs more. `onednn_rounds`: rounds of fresh processes per oneDNN setting (default 3)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise UserError(f"unknown bench section {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
    if rounds is not None and rounds < 2:
        raise UserError(f"--rounds must be at least 2 (a median over rounds of ratios needs pairs), got {rounds}")
    if onednn_rounds is not None and onednn_rounds < 1:
        raise UserError(f"--onednn-rounds must be at least 1, got {onednn_rounds}")
    out_dir = Path(out_dir or repo_root / paths.BENCH_DIR)
    _check_writable(out_dir)
    plan = QUICK if quick else Plan()
    if rounds is not None:
        plan = replace(plan, rounds=rounds, large_rounds=rounds)
    if onednn_rounds is not None:
        plan = replace(plan, onednn_rounds=onednn_rounds)
    say = Progress("bench", progress)
    started = time.perf_counter()

    from tools.bench import machine, measure, variants

    say(f"building {config.model.source.architecture if not config.model.source.model_file else 'the model file'}"
        f" ({layout}) and its servables in memory")
    import keras
    import tensorflow as tf

    v = variants.build(config, layout)
    info = machine.machine_info()
    # Where the wall time goes, so a missed time target points at its section.
    section_seconds = {"build": time.perf_counter() - started}
    data: dict = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "plan": plan.__dict__,
        "machine": {**info, "tensorflow": tf.__version__, "keras": keras.__version__,
                    "onednn": _onednn_text(),
                    "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default (cores)",
                    "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default (cores)"},
        "model": {"name": config.model.name, "layout": layout, "input_size": list(v.input_size),
                  "num_classes": v.source.num_classes, "top_k": v.servable.k, "source": v.source.info,
                  "preprocessing": config.model.preprocessing_mode,
                  "jpeg_fast_downscale": config.model.jpeg_fast_downscale},
        "targets": TARGETS,
        "results": {},
        "section_seconds": section_seconds,
    }
    results = data["results"]
    clock = [time.perf_counter()]

    def timed(section: str) -> None:
        now = time.perf_counter()
        section_seconds[section] = now - clock[0]
        clock[0] = now

    try:
        if "throughput" in sections:
            results["throughput"] = measure.throughput(v, plan, say)
            gflop, how = machine.model_gflop_per_image(v.source.info, v.source.model, v.input_size)
            peak, assumption = machine.peak_gflops(info)
            biggest = results["throughput"]["batches"][-1]
            rate = biggest["images_per_s"]["bare"]["median"] * gflop
            results["flops"] = {"gflop_per_image": gflop, "gflop_basis": how, "batch_size": biggest["batch_size"],
                                "achieved_gflops": rate, "peak_gflops": peak, "peak_basis": assumption,
                                "fraction_of_peak": rate / peak if peak else None}
            timed("throughput")
        if "large" in sections:
            results["large"] = measure.large_inputs(v, plan, say)
            timed("large")
        if "coldstart" in sections:
            results["coldstart"] = measure.export_and_cold_start(config, plan, say, repo_root)
            timed("coldstart")
        if "check" in sections:
            results["check"] = measure.time_check(repo_root, say)
            timed("check")
        if "onednn" in sections:  # issue 16: each setting in its own processes, so after the in-process sections
            from tools.bench import onednn_compare

            results["onednn"] = onednn_compare.compare(config, plan, say, repo_root, machine.all_flags())
            timed("onednn")
    finally:
        v.close()
    data["seconds_total"] = time.perf_counter() - started
    data["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    from tools.bench import report

    data["verdicts"] = report.verdicts(data)
    say("writing the report and plots")
    report.write(data, out_dir)
    if docs_dir is not None and not quick:  # issue 16: the plots docs/client-and-bench.md shows
        report.copy_plots(out_dir, Path(docs_dir))
        say(f"plots copied to {docs_dir}")
    say(f"done in {data['seconds_total']:.0f} s: {out_dir / paths.BENCH_REPORT_MD}")
    return data


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=paths.TMP_PREFIX + "probe-", dir=out_dir)
        os.rmdir(probe)
    except OSError as exc:
        raise UserError(f"output directory {out_dir} is not writable: {exc.strerror or exc}") from None


def _onednn_text() -> str:
    from tools import onednn

    state = onednn.state()
    return f"{'on' if state['enabled'] else 'off'} ({state['variable']}, {state['source']})"
