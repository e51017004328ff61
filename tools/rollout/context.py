"""What the canary templates read (`canary` in tools/templates/overlay/canary/*): steps, queries, conditions.

The canary analysis selects the canary pods' series by the rollouts-pod-template-hash label (copied onto every
series by the PodMonitor's relabeling as rollouts_pod_template_hash), whose value the Rollout passes to the
AnalysisRun as the argument canary-hash (`valueFrom.podTemplateHashValue: Latest`: argoproj/argo-rollouts
docs/features/analysis.md). Nothing here reads the disk except the vendored kustomize transformer config.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.config import Config, Target
from tools.observability import metrics as m
from tools.render import names

# kustomize `configurations:` for Rollout/AnalysisTemplate fields (vendored from argo-rollouts, see its header).
TRANSFORM_CONFIG = Path(__file__).resolve().parent / "rollout-transform-kustomize-v5.yaml"
# Rate window of the analysis queries: at the PodMonitor's 30 s scrape interval, four samples per series.
WINDOW = "2m"
# How an AnalysisTemplate argument is written in a query: argoproj/argo-rollouts docs/features/analysis.md.
HASH_PLACEHOLDER = "{{args.%s}}" % names.CANARY_HASH_ARG


@dataclass(frozen=True)
class CanaryContext:
    enabled: bool
    target: Target
    rollout: Any  # tools.config.Rollout
    steps: tuple[dict, ...]  # the Rollout's spec.strategy.canary.steps, as YAML-ready dicts
    background_start: int  # spec.strategy.canary.analysis.startingStep: after the first setWeight
    prometheus_url: str
    error_ratio_query: str
    p99_latency_query: str
    error_ratio_condition: str
    p99_latency_condition: str
    interval: str
    failure_limit: int
    golden_set: bool
    python_image: str  # the golden-set replay Job's image (kustomize's images: does not reach AnalysisTemplates)
    transform_config: str


def selector(config: Config, target: Target) -> str:
    """PromQL matchers of the canary pods' TF Serving series (the AnalysisRun fills in the hash)."""
    return (f'namespace="{config.deploy.namespace}", {m.LABEL_MODEL}="{config.model.name}", '
            f'{m.LABEL_TARGET}="{target.name}", model_name="{config.model.name}", '
            f'{m.LABEL_ROLLOUTS_POD_TEMPLATE_HASH}="{HASH_PLACEHOLDER}"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _steps(config: Config, target: Target) -> tuple[tuple[dict, ...], int]:
    canary = target.rollout.canary
    out: list[dict] = []
    start = None
    args = [{"name": names.CANARY_HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]
    for step in canary.steps:
        if step.set_weight is not None:
            out.append({"setWeight": step.set_weight})
            if start is None:
                start = len(out)
                if canary.analysis.golden_set:
                    # Right after the first canary pods are ready: replay the golden set through the canary
                    # Service; a failed replay fails this step and aborts the rollout.
                    out.append({"analysis": {"templates": [{"templateName": names.ANALYSIS_GOLDEN_SET}],
                                             "args": args}})
        else:
            out.append({"pause": {"duration": step.pause} if step.pause else {}})
    return tuple(out), start or 0


def _image(config: Config) -> str:
    pin = config.images.pins.get("python") if config.images else None
    if pin is None:
        return "python:3.13-slim"
    return f"python:{pin.tag}@{pin.digest}" if pin.digest else f"python:{pin.tag}"


def build(config: Config, target: Target) -> CanaryContext:
    rollout = target.rollout
    enabled = rollout is not None and rollout.strategy == "canary"
    if not enabled:
        return CanaryContext(False, target, rollout, (), 0, "", "", "", "", "", "", 0, False, "", "")
    a = rollout.canary.analysis
    sel = selector(config, target)
    total = f"sum(rate({m.REQUEST_COUNT}{{{sel}}}[{WINDOW}]))"
    failed = f'sum(rate({m.REQUEST_COUNT}{{{sel}, status!="OK"}}[{WINDOW}]))'
    # No failed series yet is 0 failures; no requests at all leaves an empty result or NaN (0/0): judged by the
    # golden-set replay, not here (a replica-weighted canary of an idle target gets no traffic to measure).
    error_ratio = f"({failed} or on() vector(0)) / {total}"
    # Microseconds to milliseconds; latency is recorded for successful requests only (tools/observability/metrics.py).
    p99 = f"histogram_quantile(0.99, sum by (le) (rate({m.REQUEST_LATENCY}_bucket{{{sel}}}[{WINDOW}]))) / 1000"
    # Conditions in Argo Rollouts' expression language; `len(result) == 0 ||` as in argoproj/argo-rollouts
    # docs/features/analysis.md, isNaN as in the same page.
    no_data = "len(result) == 0 || isNaN(result[0]) || "
    steps, start = _steps(config, target)
    obs_url = config.observability.prometheus_url if config.observability is not None else None
    return CanaryContext(
        enabled=True,
        target=target,
        rollout=rollout,
        steps=steps,
        background_start=start,
        prometheus_url=a.prometheus_url or obs_url or "",
        error_ratio_query=error_ratio,
        p99_latency_query=p99,
        error_ratio_condition=no_data + f"result[0] <= {_number(a.max_error_ratio)}",
        p99_latency_condition=no_data + f"result[0] <= {_number(a.max_p99_latency_ms)}",
        interval=a.interval,
        failure_limit=a.failure_limit,
        golden_set=a.golden_set,
        python_image=_image(config),
        transform_config=TRANSFORM_CONFIG.read_text(),
    )
