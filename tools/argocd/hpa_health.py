"""Argo CD's built-in health of a HorizontalPodAutoscaler, per release, and the sync-wave rule that keeps it from
failing the first sync.

Ported line for line from argoproj/argo-cd gitops-engine/pkg/health/health_hpa.go (checkConditions, isDegraded,
isHealthy) at v3.4.0 and v3.5.1; tests/gitops/test_hpa_health.py replays upstream's own test data through it.
- Up to 3.4: the first condition that is degraded or healthy decides, in the order the HPA lists them. The
  HPA controller lists AbleToScale first, so `AbleToScale=True` made an HPA without metrics Healthy.
- From 3.5 (argo-cd #26274): every condition is checked for a degraded reason first, so
  `ScalingActive=False/FailedGetResourceMetric` (no metrics for the target's pods yet) is Degraded whatever
  AbleToScale says. A Degraded resource fails a sync that has more than one step (a PostSync hook is one):
  gitops-engine/pkg/sync/sync_context.go sets OperationFailed for HealthStatusDegraded.
The fix used here (k8s/base/hpa.yaml): the HPA is in sync wave 1, after the Deployment, so Argo CD creates it only
once the serving pods are ready; they have run for minutes by then and metrics-server (which `make doctor`
checks) has their CPU usage when the HPA is first evaluated.
"""
from __future__ import annotations

import json
from typing import Any

HEALTHY, DEGRADED, PROGRESSING = "Healthy", "Degraded", "Progressing"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"

_DEGRADED_UNTIL_3_4 = {("AbleToScale", "FailedGetScale"), ("AbleToScale", "FailedUpdateScale"),
                       ("ScalingActive", "FailedGetResourceMetric"), ("ScalingActive", "InvalidSelector")}
_DEGRADED_FROM_3_5 = _DEGRADED_UNTIL_3_4 | {
    ("ScalingActive", "FailedGetObjectMetric"), ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"), ("ScalingActive", "FailedComputeMetricsReplicas")}
_HEALTHY_TYPES = ("AbleToScale", "ScalingLimited")


def _version(release: str) -> tuple[int, int]:
    major, minor = release.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def conditions_of(hpa: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The HPA's conditions (autoscaling/v2 status, or the v1 annotation); None when v1 has no annotation."""
    if hpa.get("apiVersion") == "autoscaling/v1":
        text = ((hpa.get("metadata") or {}).get("annotations") or {}).get(V1_CONDITIONS_ANNOTATION)
        return None if text is None else json.loads(text)
    return list((hpa.get("status") or {}).get("conditions") or [])


def hpa_health(hpa: dict[str, Any], release: str) -> tuple[str, str]:
    """(status, message) as Argo CD `release` computes it for this HPA object."""
    conditions = conditions_of(hpa)
    if not conditions:
        return PROGRESSING, "Waiting to Autoscale"
    new_rules = _version(release) >= (3, 5)
    degraded = _DEGRADED_FROM_3_5 if new_rules else _DEGRADED_UNTIL_3_4

    def is_degraded(c):
        return (c.get("type"), c.get("reason")) in degraded

    def is_healthy(c):
        return c.get("type") in _HEALTHY_TYPES and c.get("status") == "True"

    if new_rules:
        for c in conditions:
            if is_degraded(c):
                return DEGRADED, c.get("message", "")
        for c in conditions:
            if is_healthy(c):
                return HEALTHY, c.get("message", "")
        return PROGRESSING, "Waiting to Autoscale"
    for c in conditions:
        if is_degraded(c):
            return DEGRADED, c.get("message", "")
        if is_healthy(c):
            return HEALTHY, c.get("message", "")
    return PROGRESSING, "Waiting to Autoscale"


def wave(obj: dict[str, Any]) -> int:
    return int(((obj.get("metadata") or {}).get("annotations") or {}).get(SYNC_WAVE, "0"))


def wave_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Every autoscaler (HPA, or KEDA ScaledObject: Argo CD reads one whose Ready is False or Fallback is True as
    Degraded, argoproj/argo-cd resource_customizations/keda.sh/ScaledObject/health.lua) must sync in a later wave
    than the workload it scales (see the module docstring)."""
    out = []
    for hpa in (o for o in objects if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        for target in (o for o in objects if o.get("kind") == ref.get("kind", "Deployment")
                       and (o.get("metadata") or {}).get("name") == ref.get("name")):
            if wave(hpa) <= wave(target):
                out.append(f"{hpa['kind']}/{hpa['metadata']['name']}: sync wave {wave(hpa)} is not after "
                           f"{target['kind']}/{target['metadata']['name']}'s {wave(target)}: Argo CD reads an "
                           "autoscaler without metrics as Degraded (HPA from 3.5) and fails the first sync")
    return out
