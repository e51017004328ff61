"""Rendering with each observability option on and off: what each overlay gets, and that every check holds."""
import json

import pytest

from tests.observability.helpers import ALL_OFF, ALL_ON, build_overlays, config_data, objects_of, one
from tools import argocd, paths
from tools.check.policies import Overlay, run_policies
from tools.check.schema import validate_objects
from tools.config import load_config
from tools.observability import metrics as m
from tools.render import names

CASES = {
    # name: (switches, gpu autoscaling.metric, {target: kinds expected}, {target: kinds that must be absent})
    "all off": (ALL_OFF, "requests",
                {"cpu": {"HorizontalPodAutoscaler"}, "gpu": {"HorizontalPodAutoscaler"}},
                {"cpu": {"PodMonitor", "PrometheusRule", "ScaledObject"}, "gpu": {"PodMonitor", "PrometheusRule",
                                                                                  "ScaledObject"}}),
    "all on": (ALL_ON, "requests",
               {"cpu": {"PodMonitor", "PrometheusRule", "HorizontalPodAutoscaler"},
                "gpu": {"PodMonitor", "PrometheusRule", "ScaledObject"}},
               {"cpu": {"ScaledObject"}, "gpu": {"HorizontalPodAutoscaler"}}),
    "pod monitor only": ({**ALL_OFF, "pod_monitor": True}, "requests",
                         {"cpu": {"PodMonitor"}, "gpu": {"PodMonitor", "HorizontalPodAutoscaler"}},
                         {"cpu": {"PrometheusRule", "ScaledObject"}, "gpu": {"PrometheusRule", "ScaledObject"}}),
    "alerts, no dashboard": ({**ALL_ON, "dashboard": False, "keda": False}, "requests",
                             {"gpu": {"PrometheusRule", "HorizontalPodAutoscaler"}}, {"gpu": {"ScaledObject"}}),
    "keda on, gpu on cpu": (ALL_ON, "cpu", {"gpu": {"HorizontalPodAutoscaler"}}, {"gpu": {"ScaledObject"}}),
    "keda on, queue latency": (ALL_ON, "queue_latency", {"gpu": {"ScaledObject"}}, {"gpu": {"HorizontalPodAutoscaler"}}),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """case -> (config, {target: objects}, repo): each case rendered and built once."""
    out = {}
    for case, (switches, metric, _, _) in CASES.items():
        data = config_data(switches, gpu_metric=metric)
        built, repo = build_overlays(tmp_path_factory.mktemp(case.replace(" ", "-").replace(",", "")), data)
        out[case] = (load_config(repo / paths.MODEL_YAML), built, repo)
    return out


@pytest.mark.parametrize("case", CASES)
def test_each_option_renders_exactly_its_objects(rendered, case):
    _, built, _ = rendered[case]
    _, _, present, absent = CASES[case]
    for target, kinds in present.items():
        assert kinds <= {o["kind"] for o in built[target]}, target
    for target, kinds in absent.items():
        assert not kinds & {o["kind"] for o in built[target]}, target
    dashboards = [o for t in built for o in objects_of(built[t], "ConfigMap")
                  if o["metadata"]["name"] == names.DASHBOARD_CONFIGMAP]
    assert bool(dashboards) == CASES[case][0]["dashboard"]


@pytest.mark.parametrize("case", CASES)
def test_every_check_holds_in_every_combination(rendered, case):
    config, built, repo = rendered[case]
    for target, objects in built.items():
        assert validate_objects(objects).errors == []
        assert {k: v for k, v in run_policies(Overlay(target, objects, config)).items() if v} == {}
    # The AppProject allows exactly the kinds the overlays deploy, no more.
    assert argocd.check(repo, config, built) == []


def test_all_off_leaves_no_observability_folder(rendered):
    _, _, repo = rendered["all off"]
    assert not list((repo / paths.OVERLAYS_DIR).glob(f"*/{names.OBSERVABILITY_COMPONENT}"))


def test_the_pod_monitor_selects_the_serving_pods_and_copies_their_labels(rendered):
    config, built, _ = rendered["all on"]
    for target, objects in built.items():
        pm = one(objects, "PodMonitor")
        pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert pm["metadata"]["namespace"] == config.deploy.namespace
        assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert all(pod_labels.get(k) == v for k, v in pm["spec"]["selector"]["matchLabels"].items())
        endpoint = pm["spec"]["podMetricsEndpoints"][0]
        ports = {p["name"]: p["containerPort"] for p in one(objects, "Deployment")["spec"]["template"]["spec"][
            "containers"][0]["ports"]}
        assert ports[endpoint["port"]] == names.HTTP_PORT and endpoint["path"] == "/monitoring/prometheus/metrics"
        added = {r["targetLabel"]: r["sourceLabels"][0] for r in endpoint["relabelings"]}
        assert set(added) == {m.LABEL_MODEL, m.LABEL_VERSION, m.LABEL_LAYOUT, m.LABEL_TARGET, m.LABEL_POD_TEMPLATE_HASH,
                                  m.LABEL_ROLLOUTS_POD_TEMPLATE_HASH}  # issue 14: the canary pods
        # Each source is the Kubernetes SD meta label of a pod label the Deployment really sets (pod-template-hash
        # is the Deployment controller's).
        meta = {"__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() or c == "_" else "_" for c in k): v
                for k, v in pod_labels.items()}
        meta["__meta_kubernetes_pod_label_pod_template_hash"] = "hash"
        # The Argo Rollouts controller's label on a canary target's pods (issue 14).
        meta["__meta_kubernetes_pod_label_rollouts_pod_template_hash"] = "rollouts-hash"
        values = {label: meta.get(source) for label, source in added.items()}
        assert values == {m.LABEL_MODEL: config.model.name, m.LABEL_VERSION: str(config.model.version),
                          m.LABEL_LAYOUT: config.targets[target].layout, m.LABEL_TARGET: target,
                          m.LABEL_POD_TEMPLATE_HASH: "hash", m.LABEL_ROLLOUTS_POD_TEMPLATE_HASH: "rollouts-hash"}


def test_gpu_alerts_only_on_gpu_targets(rendered):
    _, built, _ = rendered["all on"]
    alerts = {t: {r.get("alert") for g in one(o, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
              for t, o in built.items()}
    assert {"TFServingGPUSaturated", "TFServingGPUMemoryHigh"} <= alerts["gpu"]
    assert not {"TFServingGPUSaturated", "TFServingGPUMemoryHigh"} & alerts["cpu"]


def test_the_scaled_object_follows_model_yaml(rendered):
    config, built, _ = rendered["all on"]
    so = one(built["gpu"], "ScaledObject")
    a = config.targets["gpu"].autoscaling
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.DEPLOYMENT}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (a.min_replicas, a.max_replicas)
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["serverAddress"] == config.observability.prometheus_url
    assert m.REQUEST_COUNT in trigger["metadata"]["query"] and 'serving_target="gpu"' in trigger["metadata"]["query"]
    assert float(trigger["metadata"]["threshold"]) == a.target_requests_per_second
    assert so["spec"]["fallback"]["replicas"] == a.max_replicas

    _, built, _ = rendered["keda on, queue latency"]
    so = one(built["gpu"], "ScaledObject")
    trigger = so["spec"]["triggers"][0]
    assert trigger["metricType"] == "Value" and m.QUEUING_LATENCY + "_sum" in trigger["metadata"]["query"]
    assert "fallback" not in so["spec"]  # KEDA refuses a fallback without an AverageValue trigger


def test_the_dashboard_is_a_labelled_configmap_of_grafana_json(rendered):
    config, built, _ = rendered["all on"]
    for target, objects in built.items():
        cm = next(o for o in objects_of(objects, "ConfigMap") if o["metadata"]["name"] == names.DASHBOARD_CONFIGMAP)
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        board = json.loads(cm["data"][names.DASHBOARD_FILE])
        titles = [p["title"] for p in board["panels"]]
        assert {"Request rate", "Latency p50 / p99 (successful requests)", "Batching queue wait (mean)",
                "Requests per batch (mean)", "Replicas"} <= set(titles)
        assert ("GPU utilisation (DCGM)" in titles) == config.targets[target].is_gpu
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        assert all(f'serving_target="{target}"' in e or "kube_deployment" in e or "DCGM" in e for e in exprs)
