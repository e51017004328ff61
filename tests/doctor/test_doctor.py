"""make doctor against recorded API responses of three clusters (tests/doctor/fixtures/), fed through the
kubernetes client's own request and deserialization code with only the HTTP layer replaced: a GKE cluster that
is ready (Prometheus Operator, KEDA and the DCGM exporter included), an AKS cluster that fails every check but one (the
Prometheus Operator's CRDs are installed, but no Prometheus selects the objects; KEDA is down), and a bare EKS cluster. No live
cluster. The observability checks in detail: test_observability_checks.py."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.kube_recording import answer, api_client
from tests.model_yaml import baseline_data
from tools import doctor
from tools.config import parse_config
from tools.doctor import cli
from tools.doctor.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GSA = "models-reader@my-project.iam.gserviceaccount.com"


class RecordedRest:
    """Stands in for kubernetes.client.rest.RESTClientObject: GETs answered from the recording; any write fails."""

    def __init__(self, routes: dict, log: list):
        self.routes, self.log = routes, log

    def GET(self, url, headers=None, query_params=None, _preload_content=True, _request_timeout=None):
        path = urlsplit(url).path
        self.log.append(("GET", path, dict(query_params or [])))
        route = self.routes.get(path, {"status": 403, "body": {"kind": "Status", "code": 403, "reason": "Forbidden"}})
        return answer(route["status"], json.dumps(route["body"]).encode())

    def _write(self, url, *args, **kwargs):
        self.log.append(("WRITE", url))
        raise AssertionError(f"doctor wrote to the cluster: {url}")

    POST = PUT = PATCH = DELETE = _write


def recorded(name: str, log: list) -> Cluster:
    routes = json.loads((FIXTURES / f"{name}.json").read_text())["routes"]
    return Cluster(api_client(f"https://{name}.example", RecordedRest(routes, log)))


def config(store: str, identity: dict | None):
    data = baseline_data({"store.uri": store})
    data["store"]["identity"] = identity
    return parse_config(data, base=REPO)


GKE_CONFIG = ("gs://models/tf", {"gke": GSA})


def lines(findings):
    return {f.check: f for f in findings}


def test_a_ready_gke_cluster_passes_every_check():
    log = []
    target, findings = doctor.run(config(*GKE_CONFIG), recorded("gke-ready", log))
    assert target == "gpu"
    assert [f.line() for f in findings] == [
        "✓ kubernetes: v1.33.4-gke.1036000 (supported 1.31-1.37)",
        "✓ argocd: v3.5.1 in namespace argocd (supported v3.3.0-v3.5.x)",
        "✓ applicationset clusters: 1 labelled accelerator=nvidia (cluster-gke-gpu-eu) -> gpu; 1 other "
        "(cluster-eks-cpu-us) -> cpu",
        "✓ metrics-server: APIService v1beta1.metrics.k8s.io Available",
        "✓ gpu nodes: the gpu pod fits 2 of 2 GPU nodes (gke-prod-l4-pool-6f1c2a7e-x2kd, gke-prod-t4-pool-1b9d0c3f-q7mv)",
        "✓ pod security: namespace tf-serving enforces restricted; the pods meet restricted",
        f"✓ store identity: ServiceAccount tf-serving/tf-serving has iam.gke.io/gcp-service-account={GSA}",
        "✓ image pulls: no pull failures of the 3 images in tf-serving's events",
        "✓ prometheus operator: CRDs podmonitors.monitoring.coreos.com, prometheusrules.monitoring.coreos.com serve "
        "monitoring.coreos.com/v1",
        "✓ prometheus selection: PodMonitor tf-serving selected by monitoring/kube-prometheus-stack-prometheus; "
        "PrometheusRule tf-serving selected by monitoring/kube-prometheus-stack-prometheus",
        "✓ keda: CRD scaledobjects.keda.sh serves v1alpha1; Deployment keda/keda-operator Available "
        "(ghcr.io/kedacore/keda:2.20.1)",
        "✓ keda metrics api: APIService v1beta1.external.metrics.k8s.io Available (Service "
        "keda/keda-operator-metrics-apiserver)",
        "✓ autoscalers: no HorizontalPodAutoscaler besides KEDA's keda-hpa-tf-serving scales Deployment tf-serving "
        "in tf-serving",
        "✓ dcgm exporter: DaemonSet gpu-operator/nvidia-dcgm-exporter ready on 2 of 2 GPU nodes "
        "(gke-prod-l4-pool-6f1c2a7e-x2kd, gke-prod-t4-pool-1b9d0c3f-q7mv)",
    ]
    assert {entry[0] for entry in log} == {"GET"}
    assert ("GET", "/api/v1/namespaces/argocd/secrets", {"labelSelector": "argocd.argoproj.io/secret-type=cluster"}) in log
    assert ("GET", "/apis/apps/v1/deployments", {"labelSelector": "app.kubernetes.io/name=keda-operator"}) in log
    assert ("GET", "/api/v1/namespaces/gpu-operator/pods", {"labelSelector": "app=nvidia-dcgm-exporter"}) in log


def test_a_broken_aks_cluster_fails_all_but_the_crd_check_with_its_fix():
    target, findings = doctor.run(config(*GKE_CONFIG), recorded("aks-broken", []))
    f = lines(findings)
    assert target == "gpu" and [x.check for x in findings if x.ok] == ["prometheus operator"]
    assert [x.check for x in findings if x.warning] == ["dcgm exporter"]
    assert f["kubernetes"].message == "v1.29.9 is outside the supported 1.31-1.37"
    assert f["kubernetes"].fix == "upgrade the cluster to 1.31-1.37"
    assert f["argocd"].message.startswith("v3.1.8 is outside the supported v3.3.0-v3.5.x")
    assert f["argocd"].fix == "upgrade Argo CD to v3.5.1"
    assert f["applicationset clusters"].message.endswith("no cluster gets the GPU overlay")
    assert f["applicationset clusters"].fix == "kubectl -n argocd label secret <cluster secret> accelerator=nvidia"
    assert f["metrics-server"].message.startswith("APIService v1beta1.metrics.k8s.io not Available (FailedDiscoveryCheck")
    assert f["gpu nodes"].message == ("the gpu pod fits none of 1 GPU nodes: aks-gpusmall-27182818-vmss000000: "
                                      "Insufficient cpu: the pod requests 4, the node has 3860m allocatable")
    assert "pod-security.kubernetes.io/enforce=strict" in f["pod security"].message
    assert f["store identity"].message == ("ServiceAccount tf-serving/tf-serving has iam.gke.io/gcp-service-account="
                                           f"None, model.yaml store.identity says {GSA}")
    assert f["image pulls"].message.startswith("tensorflow/serving:2.20.0-gpu: Failed to pull image")
    # The CRDs are there, so the sync would succeed, and then nothing would scrape or scale.
    assert f["prometheus operator"].line().startswith("✓ prometheus operator: CRDs podmonitors")
    assert f["prometheus selection"].message == (
        "no Prometheus selects PodMonitor tf-serving: monitoring/main's podMonitorSelector {prometheus=main} does not "
        "match its labels; PrometheusRule tf-serving: monitoring/main's ruleSelector is null (selects no "
        "PrometheusRule): the operator silently ignores what no Prometheus selects")
    assert f["prometheus selection"].fix.startswith(
        "add label prometheus: main to observability.selector_labels in model.yaml (what monitoring/main's "
        "podMonitorSelector matches), then make render; or set monitoring/main's ruleSelector to {}")
    assert f["keda"].message == ("Deployment keda/keda-operator not Available (MinimumReplicasUnavailable: Deployment "
                                 "does not have minimum availability.)")
    assert f["keda metrics api"].message.startswith("APIService v1beta1.external.metrics.k8s.io (Service "
                                                    "keda/keda-operator-metrics-apiserver) not Available (MissingEndpoints")
    assert f["autoscalers"].message.startswith("HorizontalPodAutoscaler tf-serving in tf-serving also scales "
                                               "Deployment tf-serving: it and KEDA's keda-hpa-tf-serving")
    assert f["dcgm exporter"].line().startswith(
        "! dcgm exporter: DaemonSet monitoring/dcgm-exporter has no ready pod on 1 of 1 GPU nodes "
        "(aks-gpusmall-27182818-vmss000000): there alerts TFServingGPUSaturated, TFServingGPUMemoryHigh and the GPU "
        "panels of dashboard tf-serving-dashboard get no series")
    assert all(x.fix for x in findings if not x.ok)


def test_a_bare_eks_cluster_says_what_to_install():
    target, findings = doctor.run(config("s3://models/tf", None), recorded("eks-bare", []))
    f = lines(findings)
    assert target == "gpu"
    assert [x.check for x in findings if x.ok] == ["kubernetes", "gpu nodes", "pod security", "image pulls",
                                                   "autoscalers"]
    assert f["kubernetes"].message == "v1.37.1-eks-2f0a6c1 (supported 1.31-1.37)"
    assert f["argocd"].message.startswith("CustomResourceDefinition applications.argoproj.io not found")
    assert f["applicationset clusters"].message.startswith("no cluster Secret")
    assert f["metrics-server"].message == "APIService v1beta1.metrics.k8s.io not found"
    assert f["gpu nodes"].message == "the gpu pod fits 1 of 1 GPU nodes (ip-10-0-12-34.eu-west-1.compute.internal)"
    assert f["pod security"].message.startswith("namespace tf-serving does not exist yet")
    assert f["store identity"].message.startswith("store.uri s3://models/tf needs a cloud identity")
    assert f["image pulls"].message == "namespace tf-serving not synced yet: nothing pulled"
    assert f["prometheus operator"].message == (
        "CustomResourceDefinition podmonitors.monitoring.coreos.com not found; CustomResourceDefinition "
        "prometheusrules.monitoring.coreos.com not found: the sync fails on PodMonitor tf-serving, PrometheusRule "
        "tf-serving")
    assert f["prometheus operator"].fix.startswith("install the Prometheus Operator with its CRDs")
    assert f["prometheus selection"].message.startswith("no Prometheus object (monitoring.coreos.com/v1) in any namespace")
    assert f["keda"].message == ("CustomResourceDefinition scaledobjects.keda.sh not found: KEDA is not installed and "
                                 "the sync fails on ScaledObject tf-serving")
    assert "observability.keda: false" in f["keda"].fix
    assert f["keda metrics api"].message.startswith("APIService v1beta1.external.metrics.k8s.io not found")
    assert f["dcgm exporter"].warning and f["dcgm exporter"].message.startswith(
        "no DCGM exporter DaemonSet (app=nvidia-dcgm-exporter or app.kubernetes.io/name=dcgm-exporter) in any namespace")


def test_an_unreadable_api_is_a_failed_check_not_a_crash():
    routes = json.loads((FIXTURES / "gke-ready.json").read_text())["routes"]
    routes.pop("/api/v1/nodes")  # RBAC: 403 on nodes
    cluster = recorded("gke-ready", [])
    cluster.api.rest_client.routes = routes
    _, findings = doctor.run(config(*GKE_CONFIG), cluster, target="gpu")
    assert lines(findings)["gpu nodes"].line() == (
        "✗ gpu nodes: cannot read nodes: HTTP 403 Forbidden -> fix: grant read access (get/list) to this kubeconfig user")


def test_cpu_target_skips_the_gpu_check():
    _, findings = doctor.run(config(*GKE_CONFIG), recorded("gke-ready", []), target="cpu")
    assert "gpu nodes" not in lines(findings)
    # The cpu overlay: PodMonitor and PrometheusRule, CPU HPA, no DCGM series: no KEDA or DCGM check.
    assert [f.check for f in findings][-2:] == ["prometheus operator", "prometheus selection"]


def test_the_cli_prints_one_line_per_check_and_exits_1_on_failure(monkeypatch, capsys, tmp_path):
    from kubernetes import config as k8s_config

    contexts = []

    def fake(config_file=None, context=None):
        contexts.append(context)
        return recorded({"gke": "gke-ready", "aks": "aks-broken"}[context], []).api

    monkeypatch.setattr(k8s_config, "new_client_from_config", fake)
    model = tmp_path / "model.yaml"
    import yaml
    data = baseline_data({"store.uri": "gs://models/tf"})
    data["store"]["identity"] = {"gke": GSA}
    model.write_text(yaml.safe_dump(data, sort_keys=False))
    assert cli.main(["--context", "gke", "--config", str(model)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "doctor: gke, target gpu" and len(out) == 15 and all(line.startswith("✓") for line in out[1:])
    assert cli.main(["--context", "aks", "--config", str(model)]) == 1
    printed = capsys.readouterr()
    assert sum(line.startswith("✗") for line in printed.out.splitlines()) == 12
    assert sum(line.startswith("!") for line in printed.out.splitlines()) == 1
    assert printed.err.strip().endswith("1 passed, 1 warning, 12 failed")
    assert cli.main(["--context", "gke", "--config", str(model), "--target", "tpu"]) == 2
    assert "--target 'tpu': model.yaml has targets cpu, gpu" in capsys.readouterr().err


# --- Azure Workload Identity: the ServiceAccount annotation and the pod label the webhook selects on -------------
CLIENT_ID = "6a1f3c2e-9b7d-4e11-8f0a-2c5d7e9b1a34"
AKS_IDENTITY = {"aks": CLIENT_ID}


def az_config(base: Path):
    data = baseline_data({"store.uri": "az://models/tf", "store.azure_account": "teamstore"})
    data["store"]["identity"] = AKS_IDENTITY
    return parse_config(data, base=base)


@pytest.fixture(scope="module")
def aks_repo(tmp_path_factory):
    """A repository copy whose overlays were rendered with an aks identity (so the pods carry the label)."""
    import yaml

    from tests.k8s.helpers import copy_repo
    from tools import render

    root = copy_repo(tmp_path_factory.mktemp("aks") / "repo")
    data = baseline_data({"store.uri": "az://models/tf", "store.azure_account": "teamstore"})
    data["store"]["identity"] = AKS_IDENTITY
    (root / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    render.render(root)
    return root


def with_service_account(name: str, annotations: dict | None) -> Cluster:
    cluster = recorded(name, [])
    path = "/api/v1/namespaces/tf-serving/serviceaccounts/tf-serving"
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
            "metadata": {"name": "tf-serving", "namespace": "tf-serving", "annotations": annotations or {}}}
    cluster.api.rest_client.routes[path] = {"status": 200, "body": body}
    return cluster


def test_an_aks_identity_passes_with_the_annotation_and_the_rendered_pod_label(aks_repo):
    from tools.doctor.diagnose import check_identity

    finding = check_identity(with_service_account("aks-broken", {"azure.workload.identity/client-id": CLIENT_ID}),
                             config=az_config(aks_repo))
    assert finding.line() == (f"✓ store identity: ServiceAccount tf-serving/tf-serving has azure.workload.identity/"
                              f"client-id={CLIENT_ID} and the rendered pods carry azure.workload.identity/use=true")
    # Before the first sync the ServiceAccount does not exist yet: fine, the sync creates it annotated.
    finding = check_identity(recorded("eks-bare", []), config=az_config(aks_repo))
    assert finding.ok and finding.message.startswith("ServiceAccount tf-serving/tf-serving is created by the first "
                                                     f"sync with azure.workload.identity/client-id={CLIENT_ID}")


def test_an_aks_identity_fails_without_the_service_account_annotation(aks_repo):
    from tools.doctor.diagnose import check_identity

    finding = check_identity(recorded("aks-broken", []), config=az_config(aks_repo))
    assert not finding.ok
    assert finding.message == ("ServiceAccount tf-serving/tf-serving has azure.workload.identity/client-id=None, "
                               f"model.yaml store.identity says {CLIENT_ID}")
    assert finding.fix.startswith("sync the Application")


def test_an_aks_identity_fails_when_the_rendered_pods_lack_the_webhook_label():
    """model.yaml says aks but the committed overlays were rendered before: the webhook would skip the pods."""
    from tools.doctor.diagnose import check_identity

    finding = check_identity(with_service_account("aks-broken", {"azure.workload.identity/client-id": CLIENT_ID}),
                             config=az_config(REPO))
    assert not finding.ok
    assert finding.message == ("the pod template rendered in k8s/overlays/cpu, k8s/overlays/gpu lacks "
                               "azure.workload.identity/use=true, so the identity webhook leaves the pods alone")
    assert finding.fix == "make render and commit k8s/"


def test_an_az_store_without_identity_names_the_aks_form():
    from tools.doctor.diagnose import check_identity

    data = baseline_data({"store.uri": "az://models/tf", "store.azure_account": "teamstore"})
    finding = check_identity(recorded("aks-broken", []), config=parse_config(data, base=REPO))
    assert not finding.ok and finding.message.startswith("store.uri az://models/tf needs a cloud identity")
    assert "aks: <client ID>" in finding.fix
