"""Measure how far the golden-set answers of one export move between numerically valid ways of running it.

    python -m tools.goldenset.measure [--models-dir build/models] [--version N]

For each layout, and with oneDNN on and off (TF_ENABLE_ONEDNN_OPTS=1/0, each in a fresh process: TensorFlow
reads the variable once, at import), it runs the reference images one by one and as one batch, then prints
the largest probability difference per comparison and the smallest top-1 margin. These are the figures
behind the default tolerances in tools/config.py (docs/golden-set.md). channels_first is measured with oneDNN on
only, and like validation runs it (tools/validate/nchw_on_cpu.py: NCHW rewritten to NHWC on a CPU).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools import paths, proc


def _answers(version_dir: str) -> dict:
    """In this process: {"alone": [...], "batch": [...]} rows of (classes, probabilities) per image."""
    import tensorflow as tf

    from tools.goldenset.images import reference_images
    from tools.validate import serving

    info = json.loads((Path(version_dir) / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
    images = [i.data for i in reference_images(tuple(info["input_size"]))]
    export = serving.LoadedExport(Path(version_dir), info["layout"], "m", None)

    def rows(out):
        return [[c.tolist(), p.tolist()] for c, p in zip(out[paths.OUTPUT_CLASSES], out[paths.OUTPUT_PROBABILITIES])]

    alone = [rows(export.predict([data]))[0] for data in images]
    from tensorflow.python.util import _pywrap_util_port  # whether this process really runs oneDNN kernels

    return {"alone": alone, "batch": rows(export.predict(images)), "tensorflow": tf.__version__,
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}


def _run(version_dir: Path, onednn: bool) -> dict:
    env = {"TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = f"import json; from tools.goldenset.measure import _answers; print(json.dumps(_answers({str(version_dir)!r})))"
    out = proc.run([sys.executable, "-c", code], env=env, cwd=paths.REPO_ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def max_difference(a: list, b: list) -> float:
    """The largest |p_a - p_b| over classes both top-k lists hold, across images."""
    worst = 0.0
    for (ca, pa), (cb, pb) in zip(a, b):
        mb = dict(zip(cb, pb))
        worst = max([worst] + [abs(p - mb[c]) for c, p in zip(ca, pa) if c in mb])
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models-dir", type=Path, default=paths.REPO_ROOT / paths.MODELS_DIR)
    p.add_argument("--name", default="resnet")
    p.add_argument("--version", type=int, default=1)
    args = p.parse_args(argv)
    runs = {}
    for layout, onednn in (("channels_last", True), ("channels_last", False), ("channels_first", True)):
        runs[(layout, onednn)] = _run(paths.version_dir(args.models_dir, args.name, layout, args.version), onednn)
    last_on, last_off, first_on = runs[("channels_last", True)], runs[("channels_last", False)], \
        runs[("channels_first", True)]
    figures = {
        "channels_last oneDNN on vs off": max_difference(last_on["alone"], last_off["alone"]),
        "channels_last vs channels_first (oneDNN on)": max_difference(last_on["alone"], first_on["alone"]),
        "channels_last vs channels_first (oneDNN off for NHWC)": max_difference(last_off["alone"], first_on["alone"]),
    }
    for (layout, wanted), run in runs.items():
        if run["onednn"] != wanted:
            raise SystemExit(f"{layout}: asked for oneDNN {'on' if wanted else 'off'}, TensorFlow reports "
                             f"{'on' if run['onednn'] else 'off'}")
    for key, run in runs.items():
        figures[f"{key[0]} oneDNN {'on' if key[1] else 'off'}: batch vs alone"] = max_difference(run["alone"], run["batch"])
    margins = [p[0] - p[1] for _, p in last_on["alone"]]
    tops = [p[0] for _, p in last_on["alone"]]
    for name, value in figures.items():
        print(f"{name:<55} max |dp| = {value:.3g}")
    print(f"top-1 probability: min {min(tops):.4g} max {max(tops):.4g}; "
          f"top-1 margin: min {min(margins):.3g} max {max(margins):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
