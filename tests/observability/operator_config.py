"""The Prometheus scrape job the Prometheus Operator generates from a PodMonitor, for the relabeling test.

Follows prometheus-operator pkg/prometheus/promcfg.go generatePodMonitorConfig for the fields the rendered
PodMonitor uses: job name podMonitor/<ns>/<name>/<i>; relabel_configs in its order: the job into
__tmp_prometheus_job_name (initRelabelings), drop Failed/Succeeded pods (generateRunningFilter), keep the
selector's matchLabels (__meta_kubernetes_pod_label_<key> and ..._labelpresent_<key>), keep the endpoint's port
name, namespace/container/pod target labels, job <ns>/<name>, endpoint <port>, then the PodMonitor's own
relabelings (generateRelabelConfig: camelCase to snake_case, action lower-cased). Sharding is left out: with
one shard its hashmod keeps every target. Kubernetes SD is replaced by file_sd with the same meta labels.
"""
from __future__ import annotations

import re

from tools.observability.context import meta_label

_FIELDS = {"sourceLabels": "source_labels", "separator": "separator", "targetLabel": "target_label",
           "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action"}


def _relabel(rule: dict) -> dict:
    out = {}
    for camel, snake in _FIELDS.items():  # the operator's field order
        if camel in rule:
            out[snake] = rule[camel].lower() if camel == "action" else rule[camel]
    return out


def scrape_configs(pod_monitor: dict, file_sd_path: str, interval: str = "1s") -> list[dict]:
    ns, name = pod_monitor["metadata"]["namespace"], pod_monitor["metadata"]["name"]
    spec = pod_monitor["spec"]
    jobs = []
    for i, ep in enumerate(spec["podMetricsEndpoints"]):
        relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
                   {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}]
        for key in sorted(spec["selector"].get("matchLabels", {})):
            sanitized = re.sub(r"[^a-zA-Z0-9_]", "_", key)
            relabel.append({"action": "keep",
                            "source_labels": [meta_label(key), f"__meta_kubernetes_pod_labelpresent_{sanitized}"],
                            "regex": f"({spec['selector']['matchLabels'][key]});true"})
        relabel.append({"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "regex": ep["port"]})
        relabel += [{"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                    {"target_label": "job", "replacement": f"{ns}/{name}"},
                    {"target_label": "endpoint", "replacement": ep["port"]}]
        relabel += [_relabel(r) for r in ep.get("relabelings", [])]
        jobs.append({"job_name": f"podMonitor/{ns}/{name}/{i}", "honor_labels": False,
                     "file_sd_configs": [{"files": [file_sd_path], "refresh_interval": "1s"}],
                     "scrape_interval": interval, "scrape_timeout": interval,
                     "metrics_path": ep.get("path", "/metrics"), "relabel_configs": relabel})
    return jobs


def pod_target(address: str, namespace: str, pod: str, labels: dict, port_name: str, container: str = "tf-serving",
               phase: str = "Running") -> dict:
    """One file_sd target group with the meta labels Kubernetes SD gives a pod's container port
    (prometheus/prometheus discovery/kubernetes/pod.go)."""
    meta = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_phase": phase, "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": port_name}
    for key, value in labels.items():
        sanitized = re.sub(r"[^a-zA-Z0-9_]", "_", key)
        meta[meta_label(key)] = value
        meta[f"__meta_kubernetes_pod_labelpresent_{sanitized}"] = "true"
    return {"targets": [address], "labels": meta}
