"""Which oneDNN and math settings each layout is validated under: the ones the target serving it runs with.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once per process (tools/onednn.py), so a layout whose target asks for other
values than this process has is validated in a child process started with the target's environment
(tools/validate/child.py); the rest run here. A `math: bf16` target travels the same way, as TFSG_MIXED_PRECISION
(tools/onednn.py): the export's calls then run with grappler's bf16 rewrite, as TF Serving's
--mixed_precision=bfloat16 runs them (tools/grappler.py), and the checks that compare its answers with fp32 ones
(parity with Keras, batch vs alone, the two layouts) allow the target's golden-set tolerance instead of fp32's,
which bf16's ~1e-2 would fail. channels_first is served on GPUs, but its checks run on this CPU, in this process,
through grappler's CPU layout conversion (tools/validate/nchw_on_cpu.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from tools import onednn
from tools.config import Config, golden_tolerance_for


@dataclass(frozen=True)
class LayoutSettings:
    env: dict  # variable -> value, None = unset
    why: str  # whose settings these are
    bf16_tolerance: float | None = None  # math: bf16: the target's golden-set probability tolerance

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" if v is not None else f"{k} unset" for k, v in self.env.items())

    def here(self) -> bool:
        """Whether this process already runs with exactly these values."""
        return onednn.in_force() == self.env


def for_layout(config: Config, layout: str) -> LayoutSettings | None:
    """The settings `layout` must be validated under; None when no target constrains it (validated here)."""
    cpu = [t for t in config.targets_for_layout(layout) if not t.is_gpu and t.cpu_math is not None]
    if cpu:
        target = cpu[0]
        others = [t.name for t in cpu[1:] if t.cpu_math != target.cpu_math]
        why = f"target {target.name}: {target.cpu_math.describe()}"
        if others:
            why += f" (targets {', '.join(others)} serve it with other settings: validated under the first)"
        tolerance = golden_tolerance_for(target).probability if target.cpu_math.math == "bf16" else None
        return LayoutSettings(onednn.process_env(target.cpu_math), why, tolerance)
    # channels_first (GPU targets) runs here, its NCHW ops converted to NHWC (tools/validate/nchw_on_cpu.py).
    return None


def bf16_tolerance(config: Config, layout: str) -> float | None:
    """The tolerance of fp32 comparisons of `layout`'s answers when a `math: bf16` target serves it (else None)."""
    wanted = for_layout(config, layout)
    return wanted.bf16_tolerance if wanted is not None else None


def check(report, layout: str, wanted: LayoutSettings | None, where: str) -> None:
    """One line per layout saying what it was validated under, and whether TensorFlow really runs that way."""
    state = onednn.state()
    enabled, math = state["enabled"], onednn.math()
    now = onednn.in_force()
    shown = ", ".join(f"{k}={v}" if v is not None else f"{k} unset" for k, v in now.items())
    figures = {"onednn_enabled": enabled, "math": math, **{k: v for k, v in now.items()}}
    if math == "bf16":
        figures["tolerance_for_fp32_comparisons"] = wanted.bf16_tolerance if wanted is not None else None
    if wanted is None:
        from tools.validate import nchw_on_cpu

        converted = nchw_on_cpu.applies(layout)
        report.add("serving.settings", layout, True,
                   f"validated {where} under {shown}: no CPU target serves {layout}; TensorFlow reports oneDNN "
                   f"{'on' if enabled else 'off'}" + (f"; {nchw_on_cpu.DESCRIPTION}" if converted else ""),
                   **nchw_on_cpu.figures(converted), **figures)
        return
    asked = wanted.env.get(onednn.ENV)
    problems = []
    if asked is not None and enabled is not None and enabled != (asked == "1"):
        problems.append(f"TensorFlow reports oneDNN {'on' if enabled else 'off'}, the target asks {asked}")
    if wanted.env != now:
        problems.append(f"this process runs under {shown}, the target asks {wanted.describe()}")
    detail = (f"validated {where} under {shown} ({wanted.why}); TensorFlow reports oneDNN "
              f"{'on' if enabled else 'off' if enabled is not None else 'unknown'}, {math} math"
              + (f" (grappler's auto_mixed_precision_onednn_bfloat16 on both loaders, as TF Serving's "
                 f"--mixed_precision=bfloat16; answers compared with fp32 ones within the target's golden-set "
                 f"tolerance {wanted.bf16_tolerance:g})" if math == "bf16" and wanted.bf16_tolerance else ""))
    report.add("serving.settings", layout, not problems, detail + ("" if not problems else ": " + "; ".join(problems)),
               **figures)
