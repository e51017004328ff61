"""make doctor's observability checks (tools/doctor/observability_checks.py) in detail: which checks run for which
model.yaml, and the failures the three recorded clusters of test_doctor.py do not show, each made by editing one
route of the ready GKE recording."""
from __future__ import annotations

import copy
import json

import pytest

from tests.doctor.test_doctor import FIXTURES, GKE_CONFIG, GSA, config, recorded
from tests.k8s.helpers import copy_repo, write_config
from tests.observability.helpers import ALL_OFF, ALL_ON, config_data
from tools import doctor, paths, render
from tools.config import load_config
from tools.doctor import cli
from tools.doctor.observability_checks import CHECKS, matches

OBSERVABILITY_CHECKS = list(CHECKS)
PROMETHEUSES = "/apis/monitoring.coreos.com/v1/prometheuses"
NAMESPACE = "/api/v1/namespaces/tf-serving"


def gke(edit=None):
    """The ready GKE recording, with `edit(routes)` applied first."""
    routes = json.loads((FIXTURES / "gke-ready.json").read_text())["routes"]
    if edit:
        edit(routes)
    cluster = recorded("gke-ready", [])
    cluster.api.rest_client.routes = routes
    return cluster


def findings_of(cluster, target="gpu", cfg=None):
    _, findings = doctor.run(cfg or config(*GKE_CONFIG), cluster, target=target)
    return {f.check: f for f in findings}


def prometheus_spec(routes) -> dict:
    return routes[PROMETHEUSES]["body"]["items"][0]["spec"]


@pytest.mark.parametrize("switches, gpu_metric, expected", [
    (ALL_OFF, "requests", []),
    ({**ALL_OFF, "pod_monitor": True}, "requests", ["prometheus operator", "prometheus selection"]),
    # keda off: the gpu target keeps its CPU HPA; its alerts still read DCGM series.
    ({**ALL_ON, "keda": False, "dashboard": False}, "requests",
     ["prometheus operator", "prometheus selection", "dcgm exporter"]),
    # keda on, but the gpu target scales on CPU: no ScaledObject, so no KEDA check.
    (ALL_ON, "cpu", ["prometheus operator", "prometheus selection", "dcgm exporter"]),
    (ALL_ON, "queue_latency", OBSERVABILITY_CHECKS),
], ids=["all off", "pod monitor only", "alerts without keda", "keda on, gpu on cpu", "all on"])
def test_only_what_the_rendered_overlay_needs_is_checked(tmp_path, switches, gpu_metric, expected):
    repo = copy_repo(tmp_path / "repo")
    write_config(repo / paths.MODEL_YAML, config_data(switches, gpu_metric=gpu_metric))
    render.render(repo)
    cfg = load_config(repo / paths.MODEL_YAML)
    # The bare EKS cluster has none of it: a check that ran would show, failed.
    _, findings = doctor.run(cfg, recorded("eks-bare", []), target="gpu", repo_root=repo)
    assert [f.check for f in findings if f.check in OBSERVABILITY_CHECKS] == expected


def test_a_namespace_selector_that_misses_the_namespace_names_the_label_to_add():
    def edit(routes):
        spec = prometheus_spec(routes)
        spec["podMonitorNamespaceSelector"] = {"matchLabels": {"monitoring": "enabled"}}
    f = findings_of(gke(edit))["prometheus selection"]
    assert f.message.startswith("no Prometheus selects PodMonitor tf-serving: monitoring/kube-prometheus-stack-"
                                "prometheus's podMonitorNamespaceSelector {monitoring=enabled} does not match "
                                "namespace tf-serving")
    assert f.fix == "kubectl label namespace tf-serving monitoring=enabled"


def test_a_null_namespace_selector_only_selects_the_prometheus_own_namespace():
    def edit(routes):
        prometheus_spec(routes).pop("ruleNamespaceSelector")
    f = findings_of(gke(edit))["prometheus selection"]
    assert not f.ok and "PrometheusRule tf-serving: monitoring/kube-prometheus-stack-prometheus's " \
                        "ruleNamespaceSelector is null (its own namespace only)" in f.message
    assert "PodMonitor" not in f.message  # the PodMonitor is still selected


def test_before_the_first_sync_the_rendered_namespace_labels_are_matched():
    def edit(routes):
        routes[NAMESPACE] = {"status": 404, "body": {"kind": "Status", "code": 404, "reason": "NotFound"}}
        spec = prometheus_spec(routes)
        for field in ("podMonitorNamespaceSelector", "ruleNamespaceSelector"):
            spec[field] = {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["tf-serving", "other"]},
                {"key": "pod-security.kubernetes.io/enforce", "operator": "Exists"}]}
    assert findings_of(gke(edit))["prometheus selection"].ok


def test_a_crd_without_the_served_version_fails():
    def edit(routes):
        crd = routes["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/podmonitors.monitoring.coreos.com"]
        crd["body"]["spec"]["versions"] = [{"name": "v1alpha1", "served": True, "storage": True},
                                           {"name": "v1", "served": False, "storage": False}]
    f = findings_of(gke(edit))["prometheus operator"]
    assert f.line().startswith("✗ prometheus operator: CustomResourceDefinition podmonitors.monitoring.coreos.com "
                               "serves v1alpha1, not v1: the sync fails on PodMonitor tf-serving")
    assert f.fix.startswith("upgrade the Prometheus Operator's CRDs")


def test_an_external_metrics_api_of_another_adapter_fails():
    def edit(routes):
        service = routes["/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io"]["body"]
        service["spec"]["service"] = {"name": "prometheus-adapter", "namespace": "monitoring", "port": 443}
    f = findings_of(gke(edit))["keda metrics api"]
    assert f.message == ("APIService v1beta1.external.metrics.k8s.io is served by Service monitoring/prometheus-adapter, "
                         "not KEDA's metrics server: only one adapter can serve external metrics")


def test_a_keda_crd_without_its_operator_fails():
    f = findings_of(gke(lambda routes: routes["/apis/apps/v1/deployments"]["body"].update(items=[])))["keda"]
    assert f.message.startswith("CRD scaledobjects.keda.sh is installed but no Deployment labelled "
                                "app.kubernetes.io/name=keda-operator runs in any namespace")


def test_an_exporter_missing_on_one_serving_gpu_node_is_a_warning():
    def edit(routes):
        routes["/api/v1/namespaces/gpu-operator/pods"]["body"]["items"][1]["status"]["conditions"][0]["status"] = "False"
    f = findings_of(gke(edit))["dcgm exporter"]
    assert f.warning and not f.failed
    assert f.line().startswith("! dcgm exporter: DaemonSet gpu-operator/nvidia-dcgm-exporter has no ready pod on 1 of "
                               "2 GPU nodes (gke-prod-t4-pool-1b9d0c3f-q7mv)")


def test_unreadable_prometheus_objects_are_a_failed_check():
    f = findings_of(gke(lambda routes: routes.pop(PROMETHEUSES)))["prometheus selection"]
    assert f.line() == ("✗ prometheus selection: cannot read prometheuses.monitoring.coreos.com in all namespaces: "
                        "HTTP 403 Forbidden -> fix: grant read access (get/list) to this kubeconfig user")


def test_a_warning_alone_does_not_fail_the_exit_code(monkeypatch, capsys, tmp_path):
    from kubernetes import config as k8s_config
    import yaml

    no_exporter = gke(lambda routes: routes["/apis/apps/v1/daemonsets"]["body"].update(items=[]))
    monkeypatch.setattr(k8s_config, "new_client_from_config", lambda config_file=None, context=None: no_exporter.api)
    data = copy.deepcopy(config_data(ALL_ON))
    data["store"] = {"uri": "gs://models/tf", "identity": {"gke": GSA}}
    model = write_config(tmp_path / "model.yaml", data)
    assert cli.main(["--context", "gke", "--config", str(model)]) == 0
    printed = capsys.readouterr()
    assert [line[0] for line in printed.out.splitlines()[1:]].count("!") == 1
    assert printed.err.strip().endswith("13 passed, 1 warning, 0 failed")


@pytest.mark.parametrize("selector, labels, expected", [
    ({}, {}, True),
    ({"matchLabels": {"release": "x"}}, {"release": "x", "other": "y"}, True),
    ({"matchLabels": {"release": "x"}}, {"release": "y"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
])
def test_label_selectors_match_as_kubernetes_does(selector, labels, expected):
    assert matches(selector, labels) is expected
