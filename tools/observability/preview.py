"""Draw the Grafana dashboard's panels as a PNG for the docs, from a synthetic six-hour run.

    python -m tools.observability.preview [--target gpu] [--out docs/observability-dashboard.png]

No Grafana or cluster runs here, so the preview draws each panel of the real dashboard (its titles, units, order
and the series its legends produce) with matplotlib, on series synthesised from a plausible run: daily traffic
rising to a peak, a rollout from version N to N+1 half-way, KEDA adding replicas as requests per pod pass the
target. The numbers are invented; the layout and what each panel shows are the dashboard's.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from tools import paths
from tools.config import load_config
from tools.errors import run_cli
from tools.observability import context, dashboard

MINUTES = 360
ROLLOUT_AT = 200  # minute the new version's pods start taking traffic
ROLLOUT_MINUTES = 12


def _run(target, version: int, seed: int = 15) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic series per panel title: {title: {legend: values per minute}}."""
    rng = np.random.default_rng(seed)
    t = np.arange(MINUTES)
    noise = lambda scale: rng.normal(0, scale, MINUTES)
    rps = np.clip(40 + 70 * np.sin(np.pi * t / MINUTES) ** 2 + noise(4), 5, None)
    share_new = np.clip((t - ROLLOUT_AT) / ROLLOUT_MINUTES, 0, 1)
    per_pod = target.autoscaling.target_requests_per_second
    # The HPA's scale-down stabilisation window (5 minutes, base hpa.yaml and the ScaledObject): the highest
    # recommendation of the last 5 minutes wins.
    wanted = np.ceil(rps / per_pod)
    wanted = np.array([wanted[max(0, i - 5):i + 1].max() for i in range(MINUTES)])
    replicas = np.clip(wanted, target.autoscaling.min_replicas, target.autoscaling.max_replicas)
    load = rps / (replicas * per_pod)
    old, new = f"v{version} {target.name}", f"v{version + 1} {target.name}"
    queue = 1.5 + 6 * load ** 3 + np.abs(noise(0.3))
    p50 = 28 + 10 * load + noise(1)
    p99 = 70 + 60 * load ** 2 + np.abs(noise(6))
    errors = np.clip(0.001 + np.abs(noise(0.0008)), 0, None)
    errors[(t > ROLLOUT_AT) & (t < ROLLOUT_AT + 3)] += 0.004  # a blip while old pods drain
    batch = 1 + 5 * load + noise(0.2)
    split = lambda series: {old: np.where(share_new < 1, series, np.nan), new: np.where(share_new > 0, series, np.nan)}
    gpu_util = np.clip(35 + 55 * load + noise(3), 0, 100)
    return {
        "Request rate": {f"{old} OK": rps * (1 - share_new), f"{new} OK": rps * share_new},
        "Error ratio (INVALID_ARGUMENT excluded)": split(errors),
        "Latency p50 / p99 (successful requests)": {**{f"p50 {k}": v for k, v in split(p50).items()},
                                                    **{f"p99 {k}": v for k, v in split(p99).items()}},
        "Batching queue wait (mean)": split(queue),
        "Requests per batch (mean)": split(batch),
        "Replicas": {"wanted": replicas, "available": np.minimum(replicas, np.r_[replicas[0], replicas[:-1]])},
        "GPU utilisation (DCGM)": {"tf-serving-…-a1b2c": gpu_util},
        "GPU memory used (DCGM)": {"tf-serving-…-a1b2c": np.full(MINUTES, target.gpu_memory_fraction or 0.9)
                                   - 0.02 + noise(0.003)},
    }


def draw(target_name: str = "gpu", out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = load_config()
    target = config.targets[target_name]
    ctx = context.build(config, target)
    specs = dashboard.panels(ctx)
    data = _run(target, config.model.version)
    rows = math.ceil(len(specs) / 2)
    plt.style.use("dark_background")
    fig, axes = plt.subplots(rows, 2, figsize=(14, 2.9 * rows), sharex=True)
    fig.patch.set_facecolor("#111217")
    minutes = np.arange(MINUTES)
    for ax, spec in zip(axes.flat, specs):
        ax.set_facecolor("#181b1f")
        for legend, values in data[spec.title].items():
            ax.plot(minutes / 60, values, linewidth=1.3, label=legend)
        ax.set_title(spec.title, loc="left", fontsize=10, color="#ccccdc")
        ax.set_ylabel({"reqps": "req/s", "percentunit": "ratio", "ms": "ms", "percent": "%"}.get(spec.unit, ""),
                      fontsize=8)
        ax.grid(alpha=0.15)
        if spec.unit in ("percentunit", "percent") and "memory" in spec.title:
            ax.set_ylim(0, 1 if spec.unit == "percentunit" else 100)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(specs):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("hours (synthetic run)", fontsize=8)
    fig.suptitle(f"TF Serving: {config.model.name} on {target.name}  (preview on synthetic data: "
                 f"rollout v{config.model.version} -> v{config.model.version + 1} at {ROLLOUT_AT / 60:.1f} h)",
                 fontsize=11, color="#ccccdc")
    fig.tight_layout()
    out = Path(out) if out else paths.REPO_ROOT / paths.DASHBOARD_PREVIEW_PNG
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, dpi=80, facecolor=fig.get_facecolor(), format="png")
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.observability.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="gpu", help="model.yaml target whose dashboard to draw (default gpu)")
    parser.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {paths.DASHBOARD_PREVIEW_PNG})")
    args = parser.parse_args(argv)

    def go():
        config = load_config()
        if args.target not in config.targets:
            from tools.errors import UserError

            raise UserError(f"no target {args.target!r} in model.yaml (targets: {', '.join(config.targets)})")
        print(draw(args.target, args.out))

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
