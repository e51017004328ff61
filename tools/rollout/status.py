"""`make status` for canary targets: the Rollout's step and phase, and its AnalysisRuns with their measurements.

    state = read_state(api_client, namespace)   # RolloutState, or None when the cluster has no such Rollout
    lines = describe(state)                     # the ROLLOUT column, and one note per analysis run

Reads, with the kubernetes client's CustomObjectsApi, in the destination cluster: the Rollout (argoproj.io/v1alpha1
rollouts/tf-serving) and the AnalysisRuns it owns. Field names: argoproj/argo-rollouts pkg/apis/rollouts/v1alpha1/
types.go (RolloutStatus: phase, message, currentStepIndex, abort, pauseConditions, canary.currentStepAnalysisRunStatus,
canary.currentBackgroundAnalysisRunStatus) and analysis_types.go (AnalysisRunStatus: phase, message, metricResults[]
with phase, count, failed, measurements[].value). Only reads. Tested against recorded API responses
(tests/rollout/test_status.py), not a live cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.render import names

GROUP, VERSION = "argoproj.io", "v1alpha1"
# The label the controller puts on every AnalysisRun it creates: Step or Background (argoproj/argo-rollouts
# pkg/apis/rollouts/v1alpha1/types.go RolloutTypeLabel).
ROLLOUT_TYPE_LABEL = "rollout-type"


@dataclass
class MetricState:
    name: str
    phase: str
    last_value: str | None
    count: int
    failed: int
    message: str = ""


@dataclass
class AnalysisState:
    name: str
    kind: str  # Step | Background
    phase: str
    message: str
    metrics: list[MetricState] = field(default_factory=list)
    created: str = ""


@dataclass
class RolloutState:
    phase: str
    message: str
    step: int | None  # currentStepIndex
    steps: list[dict]
    aborted: bool
    paused: bool
    stable_hash: str
    canary_hash: str
    analyses: list[AnalysisState] = field(default_factory=list)


def _errors():
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def read_state(api_client, namespace: str) -> RolloutState | None:
    """The Rollout and its AnalysisRuns; None when there is no Rollout (404). Other API errors raise."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    custom = k8s.CustomObjectsApi(api_client)
    try:
        rollout = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", names.ROLLOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    runs = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "analysisruns").get("items") or []
    return state_of(rollout, runs)


def state_of(rollout: dict, runs: list[dict]) -> RolloutState:
    spec, st = rollout.get("spec") or {}, rollout.get("status") or {}
    uid = (rollout.get("metadata") or {}).get("uid")
    state = RolloutState(
        phase=st.get("phase") or "Unknown",
        message=st.get("message") or "",
        step=st.get("currentStepIndex"),
        steps=((spec.get("strategy") or {}).get("canary") or {}).get("steps") or [],
        aborted=bool(st.get("abort")),
        paused=bool(st.get("pauseConditions")) or bool(spec.get("paused")),
        stable_hash=st.get("stableRS") or "",
        canary_hash=st.get("currentPodHash") or "",
    )
    for run in runs:
        meta = run.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if not any(o.get("kind") == "Rollout" and (o.get("uid") == uid or o.get("name") == names.ROLLOUT)
                   for o in owners):
            continue
        rst = run.get("status") or {}
        analysis = AnalysisState(name=meta.get("name", "?"), kind=(meta.get("labels") or {}).get(ROLLOUT_TYPE_LABEL, "?"),
                                 phase=rst.get("phase") or "Pending", message=rst.get("message") or "",
                                 created=meta.get("creationTimestamp") or "")
        for result in rst.get("metricResults") or []:
            values = [m.get("value") for m in result.get("measurements") or [] if m.get("value") not in (None, "")]
            analysis.metrics.append(MetricState(result.get("name", "?"), result.get("phase", "?"),
                                                values[-1] if values else None, int(result.get("count") or 0),
                                                int(result.get("failed") or 0), result.get("message") or ""))
        state.analyses.append(analysis)
    state.analyses.sort(key=lambda a: (a.created, a.name))
    return state


def _step_text(step: dict) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause until promoted"
    if "analysis" in step:
        return "analysis " + ", ".join(t.get("templateName", "?") for t in step["analysis"].get("templates") or [])
    return next(iter(step), "?")


def rollout_column(state: RolloutState) -> str:
    """One cell: phase, step i/n and what that step does."""
    n = len(state.steps)
    if state.aborted:
        return f"canary aborted at step {min(state.step or 0, n)}/{n}: stable {state.stable_hash} serves"
    if state.step is None or state.step >= n:
        where = "all steps done" if n else "no steps"
    else:
        where = f"step {state.step + 1}/{n} ({_step_text(state.steps[state.step])})"
    return f"canary {state.phase}, {where}" + (" (paused)" if state.paused and state.phase != "Paused" else "")


def analysis_lines(state: RolloutState) -> list[str]:
    """One line per AnalysisRun: kind, phase, and each metric's last measurement and failure count."""
    lines = []
    for a in state.analyses:
        metrics = "; ".join(f"{m.name} {m.phase}" + (f" last={m.last_value}" if m.last_value is not None else "")
                            + (f" ({m.failed} of {m.count} failed)" if m.count else "")
                            + (f": {m.message}" if m.message and m.phase in ("Failed", "Error") else "")
                            for m in a.metrics) or "no measurements yet"
        lines.append(f"analysis {a.name} ({a.kind}) {a.phase}: {metrics}")
    return lines


def failed_evidence(state: RolloutState) -> list[str]:
    """What a rollback pull request quotes: the abort message and the failed or errored analysis runs."""
    out = []
    if state.aborted or state.phase == "Degraded":
        out.append(f"Rollout {state.phase}{' (aborted)' if state.aborted else ''}: {state.message or 'no message'}")
    bad = [line for a, line in zip(state.analyses, analysis_lines(state)) if a.phase in ("Failed", "Error", "Inconclusive")]
    return out + bad


def add_to_row(row: Any, api_client, namespace: str) -> RolloutState | None:
    """Replace the row's ROLLOUT column with the Rollout's state and add the analysis runs as notes."""
    from tools.status import api_error

    try:
        state = read_state(api_client, namespace)
    except _errors() as exc:
        row.notes.append(f"cannot read Rollout {namespace}/{names.ROLLOUT} or its AnalysisRuns: {api_error(exc)}")
        return None
    if state is None:
        row.notes.append(f"no Rollout {namespace}/{names.ROLLOUT}: model.yaml says canary, the cluster has not synced it")
        return None
    row.rollout = rollout_column(state)
    if state.message and (state.aborted or state.phase in ("Degraded", "Paused")):
        row.notes.append(f"Rollout: {state.message}")
    row.notes.extend(analysis_lines(state))
    return state
