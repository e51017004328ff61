"""The benchmark report: verdicts against the targets, report.md, report.json and the plots."""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from tools import onednn, paths
from tools.bench import onednn_kernels

COLORS = {"bare": "#7f8c8d", "servable": "#2463a6", "tutorial": "#e07b24", "fast_decode": "#2463a6",
          "full_decode": "#c0392b", "warmup": "#2463a6", "no_warmup": "#c0392b"}
NAMES = {"bare": "bare model", "servable": "servable", "tutorial": "tutorial's servable",
         "fast_decode": "downscaled decode", "full_decode": "full-size decode",
         "warmup": "with warmup", "no_warmup": "without warmup"}


# ---------------------------------------------------------------------------------------------------- verdicts


def _verdict(what: str, target: float, stats: dict, higher_is_better: bool, unit: str = "", limit: str = "") -> dict:
    median = stats["median"]
    met = median >= target if higher_is_better else median <= target
    straddles = stats["min"] < target <= stats["max"] if higher_is_better else stats["min"] <= target < stats["max"]
    return {"what": what, "target": f"{'≥' if higher_is_better else '≤'} {target:g}{unit}", "target_value": target,
            "median": median, "min": stats["min"], "max": stats["max"], "n": stats["n"],
            "of_fastest": stats.get("of_fastest"), "met": met, "within_spread": straddles, "unit": unit,
            "limit": "" if met else limit}


def verdicts(data: dict) -> list[dict]:
    """One row per target of the issue, with the measured median, spread, and (when missed) what limits it."""
    t, r = data["targets"], data["results"]
    out = []
    if "throughput" in r:
        batches = {b["batch_size"]: b for b in r["throughput"]["batches"]}
        cores = data["machine"]["cores"]
        for size, key in ((max(batches), "servable_vs_bare_b32"), (min(batches), "servable_vs_bare_b1")):
            b = batches[size]
            pre, bare = b["ms_per_image"]["preprocess"]["median"], b["ms_per_image"]["bare"]["median"]
            limit = (f"decoding and resizing in the graph take {pre:.2f} ms per image (timed alone in the same rounds) "
                     f"against the model's {bare:.1f} ms, and run before the model on the same {cores} cores, so the "
                     f"servable can reach at most about {bare / (bare + pre):.3f} of the bare model")
            out.append(_verdict(f"servable / bare model throughput, batch {size}", t[key], b["servable_vs_bare"],
                                True, limit=limit))
        for size, b in sorted(batches.items()):
            pre, tut = b["ms_per_image"]["preprocess"]["median"], b["ms_per_image"]["tutorial_preprocess"]["median"]
            out.append(_verdict(f"servable / tutorial's servable throughput, batch {size}", t["servable_vs_tutorial"],
                                b["servable_vs_tutorial"], True,
                                limit=f"preprocessing {pre:.2f} ms per image against the tutorial's {tut:.2f} ms "
                                      "(see below)"))
    if "large" in r:
        lg = r["large"]
        fast, full = lg["ms_per_image"]["fast_preprocess"]["median"], lg["ms_per_image"]["full_preprocess"]["median"]
        mb = sum(lg["jpeg_mb"]) / len(lg["jpeg_mb"])
        limit = (f"the downscaled decode still takes {fast:.0f} ms per image against {full:.0f} ms at full size: "
                 f"libjpeg decodes the entropy-coded data of the whole {mb:.1f} MB file "
                 "whatever the output scale, and only the inverse DCT, colour conversion and resize shrink")
        if "speedup_ceiling" in lg:  # issue 16: the measured floor
            floor, ceiling = lg["ms_per_image"]["decode_floor"]["median"], lg["speedup_ceiling"]
            limit += (f". Measured floor: the 1/8-scale decode alone (entropy decoding of the whole file, DC-only "
                      f"inverse DCT: the least libjpeg can do) takes {floor:.1f} ms per image, so no output scale can "
                      f"make decode + resize more than {ceiling['median']:.2f}x [{ceiling['min']:.2f} – "
                      f"{ceiling['max']:.2f}] faster than the full-size path; the downscaled path spends "
                      f"{fast - floor:.1f} ms above that floor (header checks, resize)")
            if "speedup_ceiling_antialiased" in lg:
                aa_floor, aa = lg["ms_per_image"]["decode_resize_floor"]["median"], lg["speedup_ceiling_antialiased"]
                limit += (f". With the antialiased resize the answers need, that decode + the export's resize alone "
                          f"takes {aa_floor:.1f} ms ({aa_floor - floor:.1f} ms of resize), a ceiling of "
                          f"{aa['median']:.2f}x [{aa['min']:.2f} – {aa['max']:.2f}]; the export's header checks and "
                          f"EXIF look add {fast - aa_floor:.1f} ms")
        v = _verdict(f"{lg['size'][1]}x{lg['size'][0]} JPEGs: decode + resize time, full size / downscaled",
                     t["large_speedup"], lg["speedup"], True, unit="x", limit=limit)
        v["extra"] = (f"whole servable {lg['speedup_end_to_end']['median']:.2f}x; top-1 "
                      f"{'identical' if lg['top1_same'] else 'DIFFERENT'} for all {lg['count']} images")
        if not lg["top1_same"]:
            v["met"] = False
            v["limit"] = (v["limit"] + "; " if v["limit"] else "") + "top-1 differs between the two decodes"
        out.append(v)
    if "coldstart" in r:
        w = r["coldstart"]["warmup"]["first_over_steady"]
        out.append(_verdict("first request / steady median latency, with warmup", t["warm_first_over_steady"], w,
                            False, unit="x", limit="the warmup records do not cover this request's shapes, or the "
                                                    "graph still builds something lazily on the first real request"))
    out += onednn_verdicts(data)  # issue 16
    if "seconds_total" in data:
        s = data["seconds_total"]
        what = "`make bench` wall time"
        extra = (r.get("onednn") or {}).get("seconds")
        if extra is not None:  # issue 16: the target predates the oneDNN comparison; its time is shown apart
            s -= extra
            what += f" without the oneDNN comparison (which took {extra:.0f} s more)"
        out.append(_verdict(what, t["bench_seconds"], {"median": s, "min": s, "max": s, "n": 1},
                            False, unit=" s", limit="other work shared the cores (see the load average)"))
    return out


TUTORIAL_GAP = (
    "The export's preprocessing differs from the tutorial's in three ways: it reads each image header to refuse "
    "oversized or non-image input before decoding; it decodes large JPEGs at a reduced DCT scale (1/2 to 1/8) that "
    "still covers the model's input; and when an image is still more than twice the input size it resizes with "
    "antialiasing (a triangle filter over every source pixel, about ten times the cost), where the tutorial's plain "
    "bilinear resize reads 4 source pixels per output pixel and folds fine detail into false patterns. Within a "
    "factor of two both use the same plain bilinear resize, so on inputs near the model's size (these) the two "
    "graphs do nearly the same work; on phone-sized photos the export does far less (next sections)."
)


# ---------------------------------------------------------------------------------------------------- markdown


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.0f}"


def _stat(s: dict, digits: int = 3, unit: str = "") -> str:
    return f"{_num(s['median'], digits)}{unit} [{_num(s['min'], digits)} – {_num(s['max'], digits)}]"


def markdown(data: dict) -> str:
    m, r, model = data["machine"], data["results"], data["model"]
    arch = model["source"].get("architecture") or model["source"].get("file", "model file")
    lines = [f"# Benchmark: `{model['name']}` ({arch}, {model['layout']}) on {m['cpu_model']}, {m['cores']} cores", ""]
    lines += [f"Generated {data['generated']} by `make bench` in {data['seconds_total']:.0f} s. "
              "Numbers are medians over interleaved rounds, with [min – max] across rounds; each ratio is formed "
              "per round (A and B measured back to back), so drift of a shared machine cancels."]
    lines += ["", "Where the time went: " + ", ".join(f"{name} {sec:.0f} s" for name, sec in
                                                      data["section_seconds"].items())
              + " (build: the model and its servables in memory)."]
    if data["quick"]:
        lines += ["", "> **Quick mode**: tiny counts that only exercise the code paths. These numbers mean nothing."]
    la, lb = m.get("load_average"), m.get("load_average_end")
    if la and lb:
        lines += ["", f"Load average at start {la[0]:.2f}, at end {lb[0]:.2f} (1 min) on {m['cores']} cores: "
                      + ("other work was running, so absolute times are pessimistic and spreads wider; ratios "
                         "hold better." if max(la[0], lb[0]) > 0.5 else "a quiet machine.")]

    lines += ["", "## Targets", "",
              "| Measure | Target | Measured: median [min – max] | Fastest samples | Rounds | Result |",
              "|---|---|---|---|---|---|"]
    for v in data["verdicts"]:
        unit = v["unit"]
        measured = (f"{_num(v['median'], 3)}{unit}" if v["n"] == 1 else
                    f"**{_num(v['median'], 3)}{unit}** [{_num(v['min'], 3)} – {_num(v['max'], 3)}]")
        result = "met" if v["met"] else "**missed**"
        if v["within_spread"]:
            result += " (target inside the spread)"
        if v.get("extra"):
            measured += f"; {v['extra']}"
        fastest = "" if v.get("of_fastest") is None else f"{_num(v['of_fastest'], 3)}{unit}"
        lines.append(f"| {v['what']} | {v['target']} | {measured} | {fastest} | {v['n']} | {result} |")
    lines += ["", "*Fastest samples*: the same ratio formed from each variant's fastest round, the estimate least "
                  "disturbed by other work (noise only ever adds time). The verdict uses the median."]
    missed = [v for v in data["verdicts"] if not v["met"] and v["limit"]]
    if missed:
        lines += ["", "What limits the missed targets:", ""]
        lines += [f"- {v['what']}: {v['limit']}." for v in missed]
        if any("tutorial" in v["what"] for v in missed):
            lines += ["", TUTORIAL_GAP]

    if "throughput" in r:
        tp = r["throughput"]
        lines += ["", "## Servable, bare model and the tutorial's servable", "",
                  f"![throughput]({paths.BENCH_THROUGHPUT_PNG})", "",
                  f"Inputs: {tp['images']}. The bare model gets the servable's own decoded, normalized pixels as a "
                  "float tensor and returns the full probabilities; the servable takes the encoded bytes and returns "
                  "top-k classes, probabilities and labels; the tutorial's servable is built as the original "
                  "tutorial built it (per-image `tf.map_fn` of `decode_jpeg` and a plain bilinear resize, the model "
                  "as trained, `top_k`). The bare model and the servable run the model as exported, with its batch "
                  "normalizations folded into the layers before them (`model.fold_batch_norms`, export/fold.py); "
                  "*folded / as trained* is the bare model's throughput against the same model unfolded.", "",
                  "| Batch | Bare model img/s | Servable img/s | Tutorial img/s | Servable / bare "
                  "| Servable / tutorial | Folded / as trained | Export preprocessing ms/img "
                  "| Tutorial preprocessing ms/img |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for b in tp["batches"]:
            ips, ms = b["images_per_s"], b["ms_per_image"]
            lines.append(f"| {b['batch_size']} | {_stat(ips['bare'], 1)} | {_stat(ips['servable'], 1)} | "
                         f"{_stat(ips['tutorial'], 1)} | {_stat(b['servable_vs_bare'])} | "
                         f"{_stat(b['servable_vs_tutorial'])} | {_stat(b['folded_vs_as_trained'])} | {_stat(ms['preprocess'], 2)} | "
                         f"{_stat(ms['tutorial_preprocess'], 2)} |")
        f = r.get("flops")
        if f:
            frac = f"{f['fraction_of_peak'] * 100:.0f}%" if f["fraction_of_peak"] else "unknown"
            lines += ["", f"**Compute efficiency.** At batch {f['batch_size']} the bare model runs "
                          f"{f['achieved_gflops']:.3g} GFLOP/s ({f['gflop_per_image']:.3g} GFLOP per image: "
                          f"{f['gflop_basis']}), **{frac} of the CPU's estimated FP32 peak** of "
                          f"{f['peak_gflops'] or 0:.0f} GFLOP/s. Peak estimate: {f['peak_basis']}. A higher real "
                          "clock (turbo) would lower the fraction; a single FMA unit per core would halve the peak."]

    if "large" in r:
        lg = r["large"]
        h, w = lg["size"]
        lines += ["", "## Phone-sized photos", "", f"![large inputs]({paths.BENCH_LARGE_INPUTS_PNG})", "",
                  f"A batch of {lg['count']} photo-like {w}x{h} JPEGs "
                  f"({', '.join(f'{x:.1f}' for x in lg['jpeg_mb'])} MB). With `jpeg_fast_downscale` the export "
                  f"decodes them at {lg['decode_scale']} scale (the largest reduction that still covers the "
                  "model's input size), then resizes.", "",
                  "| Decode | Decode + resize, ms per image | Whole servable, ms per image | Peak TF allocator "
                  "memory (MB) | Top-1 per image |", "|---|---|---|---|---|"]
        for key, pre, top1 in (("fast_decode", "fast_preprocess", lg["top1_fast"]),
                               ("full_decode", "full_preprocess", lg["top1_full"]),
                               ("tutorial", None, lg["top1_tutorial"])):
            peak = lg["peak_mb"].get(key)
            label = {"fast_decode": "export, downscaled decode", "full_decode": "export, full-size decode",
                     "tutorial": "tutorial's servable (full decode, no antialias)"}[key]
            lines.append(f"| {label} | {_stat(lg['ms_per_image'][pre], 1) if pre else '–'} | "
                         f"{_stat(lg['ms_per_image'][key], 1)} | {'n/a' if peak is None else f'{peak:.0f}'} | "
                         f"{', '.join(map(str, top1))} |")
        if "speedup_ceiling" in lg:  # issue 16
            ms = lg["ms_per_image"]
            lines += ["", f"Decoding alone, ms per image: full size {_stat(ms['decode_full'], 1)}, 1/8 scale "
                          f"{_stat(ms['decode_floor'], 1)} (libjpeg's floor: it must entropy-decode the whole file at "
                          f"any scale). Ceiling of the decode + resize speed-up, full-size path / that floor: "
                          f"{_stat(lg['speedup_ceiling'], 2)}x."]
            if "speedup_ceiling_antialiased" in lg:
                lines[-1] += (f" The same decode followed by the export's antialiased resize, without header checks or "
                              f"EXIF: {_stat(ms['decode_resize_floor'], 1)} ms per image, a ceiling of "
                              f"{_stat(lg['speedup_ceiling_antialiased'], 2)}x for a path that keeps the answers "
                              "antialiased.")
        lines += ["", f"Speed-up of the downscaled decode: {_stat(lg['speedup'], 2)}x for decoding and resizing, "
                      f"{_stat(lg['speedup_end_to_end'], 2)}x for the whole servable (the model's time is the same "
                      "in both). Same top-1: "
                      f"{'yes' if lg['top1_same'] else 'no'}; largest difference of any class probability "
                      f"{lg['max_abs_prob_diff']:.2e}; the model inputs differ by {lg['pixel_mean_abs_diff']:.2f} "
                      f"on average (max {lg['pixel_max_abs_diff']:.1f}) on the 0-255 scale. The seeded model's "
                      "top-1 is nearly the same class for every input, so the probabilities are the real check. "
                      "Peak memory is what TensorFlow's CPU allocator held during the call above what it held "
                      "before (the process RSS cannot show it: the allocator keeps freed memory for reuse)."]

    if "coldstart" in r:
        cs = r["coldstart"]
        lines += ["", "## Cold start", "", f"![cold start]({paths.BENCH_COLD_START_PNG})", "",
                  f"Each run is a fresh Python process (`python -m tools.bench.coldstart`) that imports TensorFlow, "
                  f"loads the exported {cs['cold_layout']} SavedModel, optionally replays its warmup records as TF "
                  "Serving does before it marks a version AVAILABLE, then sends one photo-like JPEG it has never "
                  "seen and repeats it for the steady median. Runs alternate without and with warmup; the last "
                  "rounds run with warmup only (the first-request target's sample), since the runs without warmup "
                  "are only the contrast.", "",
                  "| Runs | Import TF (s) | Load SavedModel (s) | Warmup (s) | First request (ms) | Steady median (ms) "
                  "| First / steady |", "|---|---|---|---|---|---|---|"]
        for key in ("no_warmup", "warmup"):
            s = cs[key]
            lines.append(f"| {NAMES[key]} ({s['first_ms']['n']}) | {_stat(s['import_s'], 2)} | "
                         f"{_stat(s['load_s'], 2)} | {_stat(s['warmup_s'], 2)} | {_stat(s['first_ms'], 0)} | "
                         f"{_stat(s['steady_median_ms'], 0)} | {_stat(s['first_over_steady'], 2)} |")

    lines += onednn_markdown(data)  # issue 16

    if "coldstart" in r or "check" in r:
        lines += ["", "## Export and check", ""]
    if "coldstart" in r:
        cs = r["coldstart"]
        lines.append(f"- `make export` (export_model of {', '.join(cs['export_layouts'])}, {cs['export_mb']:.0f} MB, "
                     f"in-process, excluding Python and TensorFlow start-up): **{cs['export_s']:.1f} s**.")
    if "check" in r:
        c = r["check"]
        if c["available"]:
            status = "passed" if c["exit_status"] == 0 else f"failed with exit status {c['exit_status']}"
            lines.append(f"- `make check` (`python -m tools check`): **{c['seconds']:.1f} s**, {status}"
                         + (f" ({c['last_line']})" if c["last_line"] else "") + ".")
        else:
            lines.append(f"- `make check`: {c['note']}.")

    absent = [f for f in ("avx512f", "avx512_bf16", "amx_tile") if f not in m["flags"]]
    lines += ["", "## Machine", "",
              f"- CPU: {m['cpu_model']}, {m['cores']} cores available to this process, "
              f"{m['ghz'] or '?'} GHz ({m['ghz_source']})",
              f"- Flags: {', '.join(m['flags']) or 'none of interest'} "
              f"(absent: {', '.join(absent) or 'none'})",
              f"- TensorFlow {m['tensorflow']}, Keras {m['keras']}, oneDNN {m['onednn']}, intra-op threads "
              f"{m['intra_op_threads']}, inter-op threads {m['inter_op_threads']}; Python {m['python']} on "
              f"{m['platform']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _clean(ax) -> None:
    ax.grid(True, axis="y", color="#e3e3e3", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _ms(x: float) -> str:
    return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def _err(stats: list[dict]):
    return [[s["median"] - s["min"] for s in stats], [s["max"] - s["median"] for s in stats]]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _plt().close(fig)
    return buf.getvalue()


def plot_throughput(data: dict) -> bytes:
    plt = _plt()
    batches = data["results"]["throughput"]["batches"]
    targets = data["targets"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110, gridspec_kw={"width_ratios": [1.2, 1]})
    xs = range(len(batches))
    width = 0.26
    for i, key in enumerate(("bare", "servable", "tutorial")):
        stats = [b["images_per_s"][key] for b in batches]
        bars = left.bar([x + (i - 1) * width for x in xs], [s["median"] for s in stats], width, yerr=_err(stats),
                        color=COLORS[key], label=NAMES[key], capsize=3, error_kw={"linewidth": 0.8})
        for bar, s in zip(bars, stats):
            left.text(bar.get_x() + bar.get_width() / 2, bar.get_height() * 0.5, f"{s['median']:.1f}",
                      ha="center", va="center", color="white", fontsize=8, rotation=90)
    left.set_xticks(list(xs), [f"batch {b['batch_size']}" for b in batches])
    left.set_ylabel("images per second (higher is better)")
    left.set_title("Throughput, median and [min, max] over rounds", loc="left", fontsize=11)
    left.legend(frameon=False, loc="upper left")
    _clean(left)

    for offset, key, color, label in ((-0.12, "servable_vs_bare", COLORS["bare"], "servable / bare model"),
                                      (0.12, "servable_vs_tutorial", COLORS["tutorial"], "servable / tutorial's")):
        stats = [b[key] for b in batches]
        right.errorbar([x + offset for x in xs], [s["median"] for s in stats], yerr=_err(stats), fmt="o",
                       color=color, capsize=4, label=label, markersize=7)
        for x, s in zip(xs, stats):
            right.annotate(f"{s['median']:.3f}", (x + offset, s["median"]), xytext=(7, 0), textcoords="offset points",
                           va="center", fontsize=8, color=color)
    sizes = [b["batch_size"] for b in batches]
    for x, size in zip(xs, sizes):
        goal = targets["servable_vs_bare_b32"] if size == max(sizes) else \
            targets["servable_vs_bare_b1"] if size == min(sizes) else None
        if goal:
            right.hlines(goal, x - 0.3, x + 0.05, colors=COLORS["bare"], linestyles="--", linewidth=1)
            right.text(x - 0.3, goal, f"target {goal:g}", fontsize=7, va="bottom", color=COLORS["bare"])
    right.axhline(targets["servable_vs_tutorial"], color=COLORS["tutorial"], linestyle=":", linewidth=1)
    right.text(len(batches) - 0.5, targets["servable_vs_tutorial"], "target 1 (tutorial)", fontsize=7,
               va="bottom", ha="right", color=COLORS["tutorial"])
    right.set_xticks(list(xs), [f"batch {s}" for s in sizes])
    right.set_xlim(-0.5, len(batches) - 0.5)
    lo = min(min(b[k]["min"] for b in batches) for k in ("servable_vs_bare", "servable_vs_tutorial"))
    hi = max(max(b[k]["max"] for b in batches) for k in ("servable_vs_bare", "servable_vs_tutorial"))
    bottom, top = min(lo, targets["servable_vs_bare_b1"]) - 0.03, max(hi, 1.0) + 0.03
    right.set_ylim(bottom, top + 0.15 * (top - bottom))  # room for the legend above the points
    right.set_ylabel("throughput ratio (per round)")
    right.set_title("Ratios, median and [min, max]", loc="left", fontsize=11)
    right.legend(frameon=False, loc="upper left", fontsize=9, ncol=2)
    _clean(right)
    model = data["model"]
    fig.suptitle(f"{model['name']}: servable vs bare model vs the tutorial's servable ({model['layout']}, "
                 f"{data['machine']['cores']} cores)", x=0.01, ha="left", fontsize=13, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return _png(fig)


def plot_large(data: dict) -> bytes:
    plt = _plt()
    lg = data["results"]["large"]
    keys = ("fast_decode", "full_decode", "tutorial")
    labels = ["export,\ndownscaled decode", "export,\nfull-size decode", "tutorial's servable\n(full decode)"]
    colors = [COLORS["fast_decode"], COLORS["full_decode"], COLORS["bare"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110)
    ms = lg["ms_per_image"]
    totals = [ms[k]["median"] for k in keys]
    decode = [ms["fast_preprocess"]["median"], ms["full_preprocess"]["median"], None]
    for i, (label, total, dec, color) in enumerate(zip(labels, totals, decode, colors)):
        if dec is None:
            left.bar(i, total, 0.6, color=color)
        else:
            left.bar(i, dec, 0.6, color=color, label="decode + resize" if i == 0 else None)
            left.bar(i, max(0.0, total - dec), 0.6, bottom=dec, color=color, alpha=0.35,
                     label="model, top-k, labels" if i == 0 else None)
            left.annotate(_ms(dec), (i, dec / 2), ha="center", va="center", color="white", fontsize=9)
        left.annotate(_ms(total), (i, total), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=9)
    left.set_ylim(0, max(totals) * 1.3)  # room for the legend
    left.set_xticks(range(len(labels)), labels)
    left.set_ylabel("ms per image (lower is better)")
    left.set_title(f"Decode + resize {lg['speedup']['median']:.1f}x faster downscaled (target "
                   f"{data['targets']['large_speedup']:g}x); whole servable {lg['speedup_end_to_end']['median']:.1f}x",
                   loc="left", fontsize=11)
    left.legend(frameon=False, loc="upper left", fontsize=9, ncol=2)
    _clean(left)
    peaks = [lg["peak_mb"].get(k) for k in keys]
    if all(p is not None for p in peaks):
        bars = right.bar(labels, peaks, color=colors, width=0.6)
        for bar, p in zip(bars, peaks):
            right.annotate(f"{p:.0f} MB", (bar.get_x() + bar.get_width() / 2, p), xytext=(0, 4),
                           textcoords="offset points", ha="center", fontsize=9)
        right.set_ylabel("peak TensorFlow allocator memory (MB)")
    else:
        right.text(0.5, 0.5, "TensorFlow's allocator keeps no statistics here", ha="center", transform=right.transAxes)
    right.set_title("Peak memory during the batch", loc="left", fontsize=11)
    _clean(right)
    h, w = lg["size"]
    fig.suptitle(f"{lg['count']} phone-sized JPEGs ({w}x{h}), decoded at {lg['decode_scale']} scale; top-1 "
                 f"{'identical' if lg['top1_same'] else 'DIFFERENT'}", x=0.01, ha="left", fontsize=13,
                 fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _png(fig)


def plot_cold_start(data: dict) -> bytes:
    plt = _plt()
    cs = data["results"]["coldstart"]
    target = data["targets"]["warm_first_over_steady"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)
    keys = ("no_warmup", "warmup")
    xs = range(len(keys))
    for offset, field, alpha, label in ((-0.2, "first_ms", 1.0, "first request"),
                                        (0.2, "steady_median_ms", 0.45, "steady median")):
        stats = [cs[k][field] for k in keys]
        bars = left.bar([x + offset for x in xs], [s["median"] for s in stats], 0.38, yerr=_err(stats),
                        color=[COLORS[k] for k in keys], alpha=alpha, capsize=4, label=label)
        for bar, s in zip(bars, stats):
            left.annotate(_ms(s["median"]), (bar.get_x() + bar.get_width() / 2, s["max"]), xytext=(0, 4),
                          textcoords="offset points", ha="center", fontsize=9)
    left.set_xticks(list(xs), [f"{NAMES[k]}\n(load {cs[k]['load_s']['median']:.1f} s"
                               + (f", warmup {cs[k]['warmup_s']['median']:.1f} s)" if k == "warmup" else ")")
                               for k in keys])
    left.set_ylabel("latency (ms)")
    left.set_title("First request vs steady state (solid: first, faded: steady)", loc="left", fontsize=11)
    _clean(left)
    for x, k in zip(xs, keys):
        ratios = [run["first_over_steady"] for run in cs["runs"] if run["warmup"] == (k == "warmup")]
        right.scatter([x] * len(ratios), ratios, color=COLORS[k], s=40, alpha=0.8, zorder=3)
        med = cs[k]["first_over_steady"]["median"]
        right.annotate(f"median {med:.2f}x", (x, med), xytext=(12, 0), textcoords="offset points", va="center",
                       fontsize=9, color=COLORS[k])
    right.axhline(target, color="#333333", linestyle="--", linewidth=1)
    right.text(1.45, target, f"target {target:g}x with warmup", ha="right", va="bottom", fontsize=8)
    right.set_yscale("log")
    every = [r["first_over_steady"] for r in cs["runs"]] + [target]
    ticks = [t for t in (0.5, 1, 1.5, 2, 5, 10, 20, 50, 100, 200, 500) if min(every) / 1.5 <= t <= max(every) * 1.5]
    right.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    right.minorticks_off()
    right.set_xticks(list(xs), [NAMES[k] for k in keys])
    right.set_xlim(-0.5, 1.5)
    right.set_ylabel("first request / steady median (log scale)")
    right.set_title("Each dot is one fresh process", loc="left", fontsize=11)
    _clean(right)
    fig.suptitle(f"Cold start of {data['model']['name']} ({cs['cold_layout']}): the warmup records pay the first-"
                 "request cost before traffic", x=0.01, ha="left", fontsize=13, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return _png(fig)


# ---------------------------------------------------------------------------------------------------- files


def write(data: dict, out_dir: Path) -> None:
    """Write every file into a temporary sibling first, then move each into place: a reader never finds a
    half-written report, and a failure leaves the previous report whole."""
    out_dir = Path(out_dir)
    files: dict[str, bytes] = {}
    r = data["results"]
    if "throughput" in r:
        files[paths.BENCH_THROUGHPUT_PNG] = plot_throughput(data)
    if "large" in r:
        files[paths.BENCH_LARGE_INPUTS_PNG] = plot_large(data)
    if "coldstart" in r:
        files[paths.BENCH_COLD_START_PNG] = plot_cold_start(data)
    if "onednn" in r:
        files[paths.BENCH_ONEDNN_PNG] = plot_onednn(data)
    files[paths.BENCH_REPORT_JSON] = (json.dumps(data, indent=2) + "\n").encode()
    files[paths.BENCH_REPORT_MD] = markdown(data).encode()
    tmp = Path(tempfile.mkdtemp(prefix=paths.TMP_PREFIX + "bench-", dir=out_dir))
    try:
        for name, content in files.items():
            (tmp / name).write_bytes(content)
        for name in files:  # the markdown last: it is what a person opens
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- issue 16: oneDNN on/off and bf16 math

SETTING_NAMES = {"on": "oneDNN on (fp32)", "off": "oneDNN off (fp32)", "bf16": "oneDNN on, bf16 math",
                 "frozen": "oneDNN on, frozen weights (fp32)"}
SETTING_COLORS = {"on": "#2463a6", "off": "#c0392b", "bf16": "#27ae60", "frozen": "#8e44ad"}


def onednn_verdicts(data: dict) -> list[dict]:
    """oneDNN on vs off for the servable at every batch size: the measurement behind model.yaml's default."""
    od = data["results"].get("onednn")
    if not od:
        return []
    out = []
    for b in od["batches"]:
        stats = b["ratios"].get("on/off:servable")
        if stats:
            out.append(_verdict(f"servable throughput, oneDNN on / off, batch {b['batch_size']} (separate processes)",
                                1.0, stats, True, unit="x",
                                limit="oneDNN's kernels are slower than TensorFlow's own (Eigen) on this CPU at this "
                                      "batch size: set onednn: off (or auto) for targets on such nodes"))
    return out


def onednn_markdown(data: dict) -> list[str]:
    od = data["results"].get("onednn")
    if not od:
        return []
    m = data["machine"]
    td = od["tensorflow_default"]
    lines = ["", "## oneDNN and bf16 math", "", f"![oneDNN]({paths.BENCH_ONEDNN_PNG})", "",
             f"Each setting runs in its own fresh processes ({od['rounds']} rounds, the settings' order rotating "
             f"each round; {od['samples_per_process']} interleaved samples of servable and bare model per batch size "
             "in each process): TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, at start-up. bf16 is a CPU target's "
             "`math: bf16`, TF Serving's `--mixed_precision=bfloat16`: grappler's "
             "`auto_mixed_precision_onednn_bfloat16` on every call of its processes. Ratios are throughput ratios "
             "formed per round.", ""]
    names = od["settings"]
    header = "| Batch | " + " | ".join(f"{SETTING_NAMES[n]}: servable / bare img/s" for n in names) + \
             " | " + " | ".join(k.replace(":", " ") for k in od["batches"][0]["ratios"]) + " |"
    lines += [header, "|" + "---|" * (1 + len(names) + len(od["batches"][0]["ratios"]))]
    for b in od["batches"]:
        ips = b["images_per_s"]
        cells = [f"{_stat(ips[n + ':servable'], 1)} / {_stat(ips[n + ':bare'], 1)}" for n in names]
        cells += [_stat(s) for s in b["ratios"].values()]
        lines.append(f"| {b['batch_size']} | " + " | ".join(cells) + " |")
    lines += ["", f"Golden set (`tools/goldenset` reference images, one batch) against strict fp32 (tolerance "
                  f"{od['golden_tolerance']:g}, the CPU target's golden_tolerance.probability):", "",
              "| Comparison | Largest probability difference | Same top-1 | Within tolerance |", "|---|---|---|---|"]
    for key, d in od["golden_differences"].items():
        lines.append(f"| {key} | {d['max_abs_prob_diff']:.2e} | {d['top1_same']}/{d['images']} | "
                     f"{'yes' if d['max_abs_prob_diff'] <= od['golden_tolerance'] else 'no'} |")
    lines += kernels_markdown(od)
    rec = od["recommended"]
    lines += ["", f"- CPU: {m['cpu_model']} ({m.get('vendor', 'unknown vendor')}); flags: {', '.join(m['flags'])}.",
              f"- TensorFlow by itself (both variables unset): oneDNN **{td['observed']}** (predicted from the flags: "
              f"{td['predicted']}, because of {', '.join(td['because_flags']) or 'none of them'}; {td['rule']}).",
              f"- Fastest setting whose golden answers stay within the tolerance: **{SETTING_NAMES[rec['setting']]}** "
              f"(fastest servable median at {rec['wins'].get(rec['setting'], 0)} of {len(od['batches'])} batch "
              f"sizes; in model.yaml `{rec.get('model_yaml', rec['setting'])}`); model.yaml now: "
              + ("; ".join(f"{t}: {s}" for t, s in od["configured"].items()) or "no CPU target")
              + "."]
    same = od["golden_differences"].get("bf16 vs on")
    if same is not None and same["max_abs_prob_diff"] == 0.0:
        lines.append("- **bf16 math changed no answer by a single bit** (golden set, bf16 vs oneDNN fp32): grappler's "
                     "bf16 rewrite did not run on these graphs, so the bf16 columns measure oneDNN fp32 again and "
                     "their differences are noise (TF_CPP_MIN_LOG_LEVEL=0 shows auto_mixed_precision's log lines).")
    elif same is not None:
        speed = ", ".join(f"{_stat(b['ratios']['bf16/on:servable'])} at batch {b['batch_size']}"
                          for b in od["batches"] if "bf16/on:servable" in b["ratios"])
        fits = same["max_abs_prob_diff"] <= od["golden_tolerance"]
        lines.append(f"- bf16 math / oneDNN fp32, servable throughput: {speed}; its answers move by up to "
                     f"{same['max_abs_prob_diff']:.2g} (top-1 same {same['top1_same']}/{same['images']}), "
                     + ("within the CPU target's golden-set tolerance." if fits else
                        f"beyond the CPU target's golden-set tolerance {od['golden_tolerance']:g}: to serve it, set "
                        "`math: bf16` and a golden_tolerance.probability above that difference (with a margin for "
                        "other images and CPUs) on that target in model.yaml; `make validate` then checks the "
                        "export against fp32 within it."))
    frozen = od["golden_differences"].get("frozen vs on")
    if frozen is not None:
        speed = ", ".join(f"{_stat(b['ratios']['frozen/on:servable'])} at batch {b['batch_size']}"
                          for b in od["batches"] if "frozen/on:servable" in b["ratios"])
        lines.append(f"- Frozen weights (`frozen_weights: true`, `{onednn.ASSUME_FROZEN_ENV}=1`: oneDNN keeps each "
                     f"reordered filter) / oneDNN on, servable throughput: {speed}; answers "
                     f"{frozen['max_abs_prob_diff']:.2g} from oneDNN on's (top-1 same {frozen['top1_same']}/"
                     f"{frozen['images']}). Opt-in per CPU target: right in TF Serving, whose kernels never see a "
                     "second filter (docs/client-and-bench.md#considered-and-rejected-frozen-weights).")
    if od["not_measured"]:
        lines.append(f"- {od['not_measured']}.")
    if od["problems"]:
        lines.append(f"- **Settings not in force as asked**: {'; '.join(od['problems'])}.")
    if od.get("fold") and any(b.get("other_fold") for b in od["batches"]):
        fold = od["fold"]
        lines += ["", f"Bare model folded **{fold['other']}** / as exported (**{fold['export']}**, "
                      "`model.fold_batch_norms`), throughput, in the same processes (export/fold.py: complete folds "
                      "the shift of a normalization before a residual Add into the convolution too):", "",
                  "| Setting | " + " | ".join(f"batch {b['batch_size']}" for b in od["batches"]) + " |",
                  "|---|" + "---|" * len(od["batches"])]
        for n in names:
            lines.append(f"| {SETTING_NAMES[n]} | " + " | ".join(
                _stat(b["other_fold"][n]) if n in b.get("other_fold", {}) else "–" for b in od["batches"]) + " |")
        lines += ["", "Above 1 at the batch sizes a target serves, under the setting it runs with, on every kind of "
                      "node it runs on: `model.fold_batch_norms: "
                      f"{'complete' if fold['other'] == 'complete' else 'true'}`"
                      " would serve it faster (a new export, so a new version)."]
    return lines


def kernels_markdown(od: dict) -> list[str]:
    """The kernels each setting ran (tools/bench/onednn_kernels.py), from one untimed call per setting."""
    census = od.get("kernels")
    if not census:
        return []
    lines = ["", f"Kernels oneDNN ran, per setting: one untimed call of the servable on the golden set in a process of "
                 f"its own under `{onednn_kernels.VERBOSE_ENV}={onednn_kernels.VERBOSE_VALUE}` (the suffix of an "
                 "implementation is the ISA of its code: `avx512_core_amx` AMX tiles, `avx512_core_bf16` AVX512_BF16 "
                 "dot products, `avx512_core` AVX-512, `avx2`):", "",
             "| Setting | Convolutions ran on | Primitives executed (kind: implementation, data type, count) | "
             "oneDNN's ISA |", "|---|---|---|---|"]
    for name, c in census.items():
        prims = "; ".join(f"{p['kind']}: {p['impl']} {p['dtype']} x{p['count']}" for p in c["primitives"]) or "none"
        isa = f"{c['isa']} (oneDNN {c['version']})" if c["isa"] else "–"
        lines.append(f"| {SETTING_NAMES[name]} | {onednn_kernels.describe(c)} | {prims} | {isa} |")
    return lines


def plot_onednn(data: dict) -> bytes:
    plt = _plt()
    od = data["results"]["onednn"]
    sizes = [b["batch_size"] for b in od["batches"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110, sharey=False)
    for ax, what in zip(axes, ("servable", "bare")):
        for n in od["settings"]:
            stats = [b["images_per_s"][f"{n}:{what}"] for b in od["batches"]]
            ax.errorbar(range(len(sizes)), [s["median"] for s in stats], yerr=_err(stats), marker="o", capsize=4,
                        color=SETTING_COLORS[n], label=SETTING_NAMES[n])
            for x, s in enumerate(stats):
                ax.annotate(f"{s['median']:.1f}", (x, s["median"]), xytext=(6, 4), textcoords="offset points",
                            fontsize=8, color=SETTING_COLORS[n])
        ax.set_xticks(range(len(sizes)), [f"batch {s}" for s in sizes])
        ax.set_ylabel("images per second (higher is better)")
        ax.set_title(f"{'Servable (bytes in, top-k out)' if what == 'servable' else 'Bare model (pixels in)'}: "
                     "median, [min, max] over processes", loc="left", fontsize=10)
        ax.legend(frameon=False, fontsize=9)
        _clean(ax)
    m = data["machine"]
    fig.suptitle(f"oneDNN and bf16 math by batch size on {m['cpu_model']} ({m['cores']} cores); TensorFlow's own "
                 f"choice here: oneDNN {od['tensorflow_default']['observed']}", x=0.01, ha="left", fontsize=12,
                 fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return _png(fig)


def copy_plots(out_dir: Path, docs_dir: Path) -> None:
    """Copy the report's plots into docs_dir (each written beside its target, then renamed into place)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name in (paths.BENCH_THROUGHPUT_PNG, paths.BENCH_LARGE_INPUTS_PNG, paths.BENCH_COLD_START_PNG,
                 paths.BENCH_ONEDNN_PNG):
        if (Path(out_dir) / name).is_file():
            tmp = docs_dir / (paths.TMP_PREFIX + name)
            shutil.copyfile(Path(out_dir) / name, tmp)
            os.replace(tmp, docs_dir / name)
