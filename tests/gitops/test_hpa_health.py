"""The HPA first-sync problem, proven against Argo CD's own HPA health logic (tools/argocd/hpa_health.py, a port of
argoproj/argo-cd gitops-engine/pkg/health/health_hpa.go at v3.4.0 and v3.5.1).

1. The port reproduces upstream: upstream's test data (vendored under fixtures/hpa-health/) gets the statuses
   upstream's TestHPA (gitops-engine/pkg/health/health_test.go, v3.5.1) asserts.
2. The problem: an HPA created beside a Deployment whose pods are not ready has
   ScalingActive=False/FailedGetResourceMetric (kubernetes pkg/controller/podautoscaler/horizontal.go) and is
   Degraded on 3.5 (Healthy on 3.4), which fails a sync with a PostSync hook.
3. The fix: the built overlays put the HPA in a later sync wave than the Deployment, so it is created only once
   the Deployment is Healthy, when its status is the one the HPA controller writes with metrics: Healthy on both.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools import kustomize, paths
from tools.argocd.hpa_health import DEGRADED, HEALTHY, PROGRESSING, hpa_health, wave, wave_problems

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hpa-health"


@pytest.fixture(scope="module")
def built():
    return {target: kustomize.build(REPO / paths.OVERLAYS_DIR / target) for target in ("cpu", "gpu")}


def load(name: str) -> dict:
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name, want", [
    ("hpa-v2-healthy", HEALTHY), ("hpa-v2-degraded", DEGRADED), ("hpa-v2-progressing", PROGRESSING),
    ("hpa-v1-degraded-failedgetobjectmetric", DEGRADED)])
def test_the_port_agrees_with_upstream_test_data_on_3_5(name, want):
    assert hpa_health(load(name), "v3.5.1")[0] == want


def test_3_4_called_the_object_metric_failure_healthy():
    # The behaviour 3.5 changed (argo-cd #26274): AbleToScale=True, listed first, decided.
    assert hpa_health(load("hpa-v1-degraded-failedgetobjectmetric"), "v3.4.0")[0] == HEALTHY


def hpa(conditions: list[tuple[str, str, str]]) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "tf-serving"},
            "status": {"conditions": [{"type": t, "status": s, "reason": r, "message": f"{t} {r}"}
                                      for t, s, r in conditions]}}


# What the HPA controller writes while the target's pods have no metrics yet (not ready, or no metrics-server).
NO_METRICS = hpa([("AbleToScale", "True", "SucceededGetScale"),
                  ("ScalingActive", "False", "FailedGetResourceMetric")])
# ... and once metrics-server reports the pods' CPU usage.
WITH_METRICS = hpa([("AbleToScale", "True", "ReadyForNewScale"), ("ScalingActive", "True", "ValidMetricFound"),
                    ("ScalingLimited", "False", "DesiredWithinRange")])


def test_an_hpa_without_metrics_is_degraded_from_3_5_only():
    assert hpa_health(NO_METRICS, "v3.3.0")[0] == HEALTHY
    assert hpa_health(NO_METRICS, "v3.5.1")[0] == DEGRADED
    assert hpa_health(hpa([]), "v3.5.1")[0] == PROGRESSING  # just created: Argo CD waits


@pytest.mark.parametrize("release", ["v3.3.0", "v3.4.0", "v3.5.1"])
def test_with_metrics_every_supported_release_calls_it_healthy(release):
    assert hpa_health(WITH_METRICS, release)[0] == HEALTHY


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_built_autoscaler_syncs_after_the_deployment(built, overlay):
    objects = built[overlay]
    hpa_obj = next(o for o in objects if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert wave(hpa_obj) > wave(deployment)
    assert wave_problems(objects) == []


def test_an_hpa_in_the_deployments_wave_is_reported(built):
    objects = [dict(o) for o in built["cpu"]]
    i = next(i for i, o in enumerate(objects) if o["kind"] == "HorizontalPodAutoscaler")
    objects[i] = {**objects[i], "metadata": {**objects[i]["metadata"], "annotations": {}}}
    assert "sync wave 0 is not after Deployment/tf-serving's 0" in wave_problems(objects)[0]


def test_a_scaled_object_in_the_deployments_wave_is_reported(built):
    objects = [dict(o) for o in built["gpu"]]
    i = next(i for i, o in enumerate(objects) if o["kind"] == "ScaledObject")
    objects[i] = {**objects[i], "metadata": {**objects[i]["metadata"], "annotations": {}}}
    assert wave_problems(objects)[0].startswith("ScaledObject/tf-serving: sync wave 0 is not after "
                                                "Deployment/tf-serving's 0")
