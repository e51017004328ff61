"""The profile as a picture: latency and throughput against batch size, one line per concurrency level."""
from __future__ import annotations

import io
from pathlib import Path

from tools.profile import Point, write_atomically


def _style(ax, batch_sizes: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(batch_sizes)
    ax.set_xticklabels([str(b) for b in batch_sizes])
    ax.minorticks_off()
    ax.set_xlabel("batch size (images per request)")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_ylim(bottom=0)


def plot_profile(points: list[Point], path: Path, title: str, subtitle: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch_sizes = sorted({p.batch_size for p in points})
    levels = sorted({p.concurrency for p in points})
    cmap = plt.get_cmap("viridis")
    colors = {c: cmap(0.1 + 0.75 * i / max(1, len(levels) - 1)) for i, c in enumerate(levels)}

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 5.2), dpi=110)
    for c in levels:
        series = sorted((p for p in points if p.concurrency == c), key=lambda p: p.batch_size)
        xs = [p.batch_size for p in series]
        name = f"{c} concurrent request{'s' if c > 1 else ''}"
        lat.fill_between(xs, [p.latency_ms_p50 for p in series], [p.latency_ms_p99 for p in series],
                         color=colors[c], alpha=0.15, linewidth=0)
        lat.plot(xs, [p.latency_ms_p50 for p in series], marker="o", color=colors[c], linewidth=2, label=name)
        lat.plot(xs, [p.latency_ms_p99 for p in series], color=colors[c], linewidth=1, linestyle="--")
        thr.plot(xs, [p.images_per_s for p in series], marker="o", color=colors[c], linewidth=2, label=name)

    _style(lat, batch_sizes)
    lat.set_ylabel("latency per request (ms)")
    lat.set_title("Latency: p50 (solid) to p99 (dashed)", loc="left", fontsize=11)
    lat.legend(frameon=False, loc="upper left")

    _style(thr, batch_sizes)
    thr.set_ylabel("throughput (images / s)")
    thr.set_title("Throughput", loc="left", fontsize=11)
    best = max(points, key=lambda p: p.images_per_s)
    edge = "left" if best.batch_size == batch_sizes[0] else "right" if best.batch_size == batch_sizes[-1] else "center"
    thr.annotate(f"best: {best.images_per_s:.1f} images/s\n(batch {best.batch_size}, {best.concurrency} concurrent)",
                 xy=(best.batch_size, best.images_per_s), xytext=(0, 10), textcoords="offset points",
                 ha=edge, va="bottom", fontsize=9, color="#333333")
    thr.set_ylim(top=best.images_per_s * 1.25)
    thr.legend(frameon=False, loc="lower right")

    fig.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    if subtitle:
        fig.text(0.01, 0.915, subtitle, ha="left", fontsize=9, color="#555555")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomically(Path(path), buf.getvalue())
