"""The two layouts of one version against each other: identical weights, the same computation in both graphs
(apart from layout ops), and the same answers on every sample. TensorFlow's stock CPU kernels cannot run an NCHW
convolution; validation runs the channels_first export through grappler's CPU layout conversion
(tools/validate/nchw_on_cpu.py), with oneDNN on as well (tools/onednn.py). Where it still cannot run, the
comparison of answers is reported as not run, naming why, and never as passed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tools import paths
from tools.validate import tfs_formats as tfs
from tools.validate.correctness import LAYOUTS_ATOL, Answers, compare, widened
from tools.validate.ops import op_histogram
from tools.validate.report import Report

# Ops a layout change adds or removes without changing the computation.
LAYOUT_NEUTRAL = {"Transpose", "Const", "Identity", "NoOp", "Reshape", "Squeeze", "ExpandDims", "Shape",
                  "StridedSlice", "Pack"}

_PROBE: tuple[bool, str] | None = None


def nchw_runs_here() -> tuple[bool, str]:
    """Whether this machine's TensorFlow runs an NCHW Conv2D the way validation runs the channels_first export
    (through the CPU layout conversion where there is no GPU), with the reason. Probed once per process."""
    global _PROBE
    if _PROBE is None:
        import tensorflow as tf

        from tools import grappler
        from tools.validate import nchw_on_cpu

        converted = nchw_on_cpu.applies(paths.LAYOUTS[1])
        try:
            with grappler.python_calls(nchw_to_nhwc=converted):
                x = tf.ones([1, 3, 8, 8])
                kernel = tf.ones([3, 3, 3, 4])
                tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME", data_format="NCHW"))().numpy()
            _PROBE = (True, "NCHW Conv2D runs here" + (" (as NHWC: CPU layout conversion)" if converted else ""))
        except Exception as exc:  # InvalidArgument, Unimplemented or NotFound depending on the build
            from tools import onednn

            state = onednn.state()
            _PROBE = (False, f"{tfs.error_summary(str(exc))[:160]} (oneDNN is {'on' if state['enabled'] else 'off'}: "
                             f"{state['variable']}, {state['source']}; CPU layout conversion "
                             f"{'on' if converted else 'off'})")
    return _PROBE


def read_weights(version_dir: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(version_dir) / paths.VARIABLES_DIR / "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")}


def check_weights(report: Report, dirs: dict[str, Path], infos: dict[str, dict | None]) -> bool:
    """Both layouts hold the same variables with identical values (Keras stores kernels alike in both)."""
    a, b = paths.LAYOUTS
    problems = []
    try:
        wa, wb = read_weights(dirs[a]), read_weights(dirs[b])
    except Exception as exc:
        report.add("layouts.weights", None, False, f"cannot read the variables: {tfs.error_summary(str(exc))[:200]}")
        return False
    if set(wa) != set(wb):
        only = sorted(set(wa) ^ set(wb))
        problems.append(f"different variables: {', '.join(only[:5])}{' ...' if len(only) > 5 else ''}")
    differing = [n for n in sorted(set(wa) & set(wb)) if wa[n].shape != wb[n].shape or not np.array_equal(wa[n], wb[n])]
    if differing:
        problems.append(f"{len(differing)} variables differ, e.g. {differing[0]}")
    sha = {lay: ((info or {}).get("source") or {}).get("weights_sha256") for lay, info in infos.items()}
    if sha.get(a) != sha.get(b):
        problems.append("export_info records different source weights for the two layouts")
    params = int(sum(v.size for v in wa.values()))
    report.add("layouts.weights", None, not problems,
               "; ".join(problems) or f"both layouts hold the same {len(wa)} variables, bit for bit",
               variables=len(wa), parameters=params)
    return not problems


def graph_difference(meta_a, meta_b) -> dict[str, tuple[int, int]]:
    """Op types whose counts differ between two graphs, ignoring ops that only move data between layouts."""
    ha, hb = op_histogram(meta_a), op_histogram(meta_b)
    diff = {}
    for op in sorted(set(ha) | set(hb)):
        if op not in LAYOUT_NEUTRAL and ha[op] != hb[op]:
            diff[op] = (ha[op], hb[op])
    return diff


def check_graphs(report: Report, metas: dict[str, object]) -> None:
    """Both graphs hold the same computation apart from ops that only move data between layouts."""
    a, b = paths.LAYOUTS
    diff = graph_difference(metas[a], metas[b])
    report.add("layouts.graphs", None, not diff,
               "both graphs hold the same computation apart from layout ops" if not diff else
               "graphs differ in " + ", ".join(f"{op} {x} vs {y}" for op, (x, y) in diff.items()),
               graph_differences=len(diff))


def check_layouts_agree(report: Report, answers: dict[str, Answers | None],
                        bf16_tolerance: float | None = None) -> None:
    a, b = paths.LAYOUTS
    runs, reason = nchw_runs_here()
    if not runs:
        report.not_run("layouts.agree", None, f"the {b} export cannot run on this machine: {reason}",
                       nchw_runs_here=False)
        return
    missing = [lay for lay in (a, b) if answers.get(lay) is None]
    if missing:
        report.add("layouts.agree", None, False, f"cannot compare: no answers from {', '.join(missing)}")
        return
    atol = widened(LAYOUTS_ATOL, bf16_tolerance)  # a bf16 target's layout against the other's answers
    cmp = compare(answers[a], answers[b], atol)
    ok = cmp.ok(atol) and cmp.top1_same == cmp.rows
    report.add("layouts.agree", None, ok,
               f"same top-1 on {cmp.top1_same} of {cmp.rows} samples, probabilities within {atol:g}" if ok
               else f"{a} and {b} disagree: top-1 same on {cmp.top1_same} of {cmp.rows} samples, probabilities "
                    f"differ by up to {cmp.max_abs_diff:.3g} (tolerance {atol:g})",
               max_abs_diff=cmp.max_abs_diff, tolerance=atol, top1_same=cmp.top1_same, samples=cmp.rows,
               ties=cmp.ties, nchw_runs_here=True)
