"""What the observability templates read (`obs` in tools/templates/overlay/*): selectors, queries, thresholds.

PromQL shared by the alerts, the dashboard and KEDA's trigger is built here once, so the three always select
the same series. Everything is derived from model.yaml; nothing here reads the disk.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tools.config import Config, Target
from tools.observability import metrics as m
from tools.render import names

# Pod labels the overlays set (model_version_patch.yaml) and the relabeling reads, with the target label each
# becomes. The keys are the annotation keys `make status` reads, so one name means one thing everywhere.
POD_LABELS = (
    (names.ANNOTATION_MODEL_NAME, m.LABEL_MODEL),
    (names.ANNOTATION_MODEL_VERSION, m.LABEL_VERSION),
    (names.ANNOTATION_MODEL_LAYOUT, m.LABEL_LAYOUT),
    (names.ANNOTATION_TARGET, m.LABEL_TARGET),
    (m.POD_TEMPLATE_HASH_POD_LABEL, m.LABEL_POD_TEMPLATE_HASH),
    (m.ROLLOUTS_POD_TEMPLATE_HASH_POD_LABEL, m.LABEL_ROLLOUTS_POD_TEMPLATE_HASH),  # issue 14: canary pods
)
# Windows of the multi-window, multi-burn-rate latency alerts (Google SRE workbook, "Alerting on SLOs",
# recommended parameters): page at 14.4x over 1h confirmed by 5m, and at 6x over 6h confirmed by 30m.
BURN_RATE_ALERTS = (("fast", 14.4, "1h", "5m", "2m"), ("slow", 6.0, "6h", "30m", "15m"))
SLO_OBJECTIVE = 0.99  # "p99 under latency_slo_ms": 1% of requests may be slower


def meta_label(pod_label: str) -> str:
    """Prometheus' Kubernetes SD meta label of a pod label (discovery/kubernetes/pod.go: strutil.SanitizeLabelName
    turns every character outside [a-zA-Z0-9_] into '_')."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


@dataclass(frozen=True)
class BurnRate:
    name: str
    factor: float
    long: str
    short: str
    for_: str


@dataclass(frozen=True)
class ObservabilityContext:
    config: Any  # tools.config.Observability
    metrics: Any  # the tools.observability.metrics module
    target: Target
    namespace: str
    model: str
    sel: str  # PromQL matchers of this target's TF Serving series
    by: str  # the labels every per-version figure keeps
    pod_labels: tuple[tuple[str, str, str], ...]  # (pod label, meta label, target label)
    slo_le: str  # the le matcher of the latency objective's bucket
    slo_bound_ms: float  # the objective as measured: the bucket bound at or above latency_slo_ms
    burn_rates: tuple[BurnRate, ...]
    error_budget: float
    scaled_object: bool  # this target scales through KEDA
    keda_query: str
    keda_threshold: str
    keda_metric_type: str

    def rate(self, metric: str, window: str, extra: str = "") -> str:
        return f"rate({metric}{{{self.sel}{', ' + extra if extra else ''}}}[{window}])"

    @property
    def enabled(self) -> bool:
        """Whether the overlay gets the observability component at all."""
        c = self.config
        return c.pod_monitor or c.alerts or c.dashboard or self.scaled_object

    @property
    def dcgm_namespace_label(self) -> str:
        # dcgm-exporter's pod and namespace labels are renamed together (exported_pod, exported_namespace).
        return "exported_namespace" if self.config.dcgm_pod_label.startswith("exported_") else "namespace"

    @property
    def dcgm_sel(self) -> str:
        """DCGM series of this namespace's TF Serving pods (the Deployment's pods are named tf-serving-<hash>-<id>)."""
        return (f'{self.dcgm_namespace_label}="{self.namespace}", '
                f'{self.config.dcgm_pod_label}=~"{names.DEPLOYMENT}-.*"')

    def dashboard_json(self) -> str:
        from tools.observability import dashboard

        return dashboard.dashboard_json(self)


def _keda(config: Config, target: Target, sel: str) -> tuple[str, str, str]:
    a = target.autoscaling
    if a.metric == "requests":
        # AverageValue (KEDA's default): the HPA divides the total by the replicas and compares it with the
        # threshold, so the query returns the whole target's request rate and the threshold is per pod.
        query = f"sum(rate({m.REQUEST_COUNT}{{{sel}}}[2m]))"
        return query, _number(a.target_requests_per_second), "AverageValue"
    if a.metric == "queue_latency":
        # A latency does not divide by replicas: Value makes the HPA scale by current/target directly.
        query = (f"sum(rate({m.QUEUING_LATENCY}_sum{{{sel}}}[2m])) / "
                 f"clamp_min(sum(rate({m.QUEUING_LATENCY}_count{{{sel}}}[2m])), 1) / 1000")
        return query, _number(a.target_queue_latency_ms), "Value"
    return "", "", ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def build(config: Config, target: Target) -> ObservabilityContext:
    obs = config.observability
    namespace, model = config.deploy.namespace, config.model.name
    sel = f'namespace="{namespace}", {m.LABEL_MODEL}="{model}", {m.LABEL_TARGET}="{target.name}"'
    bound = m.bucket_at_least(obs.thresholds.latency_slo_ms * 1000, m.REQUEST_LATENCY_BUCKETS)
    query, threshold, metric_type = _keda(config, target, sel)
    return ObservabilityContext(
        config=obs,
        metrics=m,
        target=target,
        namespace=namespace,
        model=model,
        sel=sel,
        by=f"namespace, {m.LABEL_MODEL}, {m.LABEL_TARGET}, {m.LABEL_VERSION}",
        pod_labels=tuple((pod, meta_label(pod), tgt) for pod, tgt in POD_LABELS),
        slo_le=m.le_matcher(bound),
        slo_bound_ms=round(bound / 1000, 3),
        burn_rates=tuple(BurnRate(*b) for b in BURN_RATE_ALERTS),
        error_budget=round(1 - SLO_OBJECTIVE, 6),
        scaled_object=obs.scaled_object(target),
        keda_query=query,
        keda_threshold=threshold,
        keda_metric_type=metric_type,
    )
