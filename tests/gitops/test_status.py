"""make status against recorded API responses (tests/gitops/fixtures/status/), fed through the kubernetes
client's own request and deserialization code with only the HTTP layer replaced. No live cluster."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from kubernetes import client as k8s

from tests.kube_recording import answer, api_client
from tests.model_yaml import baseline_data, write_baseline
from tools import status
from tools.config import parse_config
from tools.errors import UserError
from tools.status import cli

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "status"
A2 = "sha256:21513756bed9b4408c5491767bd7e0a90a630c2cd4928888833c946393c00f71"
B2 = "sha256:455593a7e89a242a5474b6e8dcb3c44deb35000a13c0426dc64a590dc39a8a90"
PINNED_V2 = {"model.version": 2, "model.digests": {"channels_last": A2, "channels_first": B2}}
ARGOCD, GPU, EKS = "https://argocd.example", "https://34.91.10.2", "https://4F2A9C.gr7.us-east-1.eks.amazonaws.com"
APPS_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/tf-serving/deployments/tf-serving"
PODS_PATH = "/api/v1/namespaces/tf-serving/pods"

ROUTES = {
    (ARGOCD, APPS_PATH): (200, "applications.json"),
    (ARGOCD, DEPLOYMENT_PATH): (200, "in-cluster/deployment.json"),
    (ARGOCD, PODS_PATH): (200, "in-cluster/pods.json"),
    (GPU, DEPLOYMENT_PATH): (200, "gke-gpu-eu/deployment.json"),
    (GPU, PODS_PATH): (200, "gke-gpu-eu/pods.json"),
    (EKS, DEPLOYMENT_PATH): (404, "eks-cpu-us/deployment-404.json"),
}


class RecordedRest:
    """Stands in for kubernetes.client.rest.RESTClientObject: answers GETs from the recorded files."""

    def __init__(self, host: str, log: list):
        self.host, self.log = host, log

    def GET(self, url, headers=None, query_params=None, _preload_content=True, _request_timeout=None):
        parts = urlsplit(url)
        query = dict(query_params or []) or dict(parse_qsl(parts.query))
        self.log.append((self.host, parts.path, query))
        status_code, name = ROUTES.get((self.host, parts.path), (403, None))
        data = (FIXTURES / name).read_bytes() if name else json.dumps(
            {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}).encode()
        return answer(status_code, data)


def recorded_client(host: str, log: list) -> k8s.ApiClient:
    return api_client(host, RecordedRest(host, log))


@pytest.fixture
def config():
    # The recorded responses are of resnet v2 in namespaces argocd and tf-serving: the baseline's, bumped to v2.
    return parse_config(baseline_data(PINNED_V2), base=REPO)


@pytest.fixture
def log():
    return []


def clients_for(log):
    servers = {"https://kubernetes.default.svc": ARGOCD, GPU: GPU, EKS: EKS}

    def clients(destination):
        host = servers.get(destination.get("server"))
        if host is None:
            return None
        api = recorded_client(host, log)
        return k8s.AppsV1Api(api), k8s.CoreV1Api(api)

    return clients


def test_rows_from_recorded_responses(config, log):
    custom = k8s.CustomObjectsApi(recorded_client(ARGOCD, log))
    rows = {row.application: row for row in status.collect(config, custom, clients_for(log))}
    assert list(rows) == ["resnet-eks-cpu-us", "resnet-gke-gpu-eu", "resnet-in-cluster", "resnet-onprem-cpu"]

    gpu = rows["resnet-gke-gpu-eu"]
    assert (gpu.cluster, gpu.target, gpu.sync, gpu.health, gpu.last_sync) == \
        (GPU, "gpu", "Synced@8f2c41d", "Healthy", "Succeeded")
    assert gpu.rollout == "2/2 updated, 2 ready, 2 available"
    assert gpu.serving == {("2", B2): 2} and gpu.not_ready == 0 and gpu.notes == []

    mid = rows["resnet-in-cluster"]
    assert (mid.health, mid.last_sync, mid.rollout) == ("Progressing", "Running", "2/3 updated, 3 ready, 3 available")
    # One v1 pod still ready, one v1 pod terminating, one v2 pod not ready yet.
    assert mid.serving == {("1", "sha256:" + "1" * 64): 1, ("2", A2): 2} and mid.not_ready == 2
    assert mid.deployment_version == "2" and mid.notes == []

    failed = rows["resnet-eks-cpu-us"]
    assert (failed.sync, failed.health, failed.last_sync, failed.rollout) == \
        ("OutOfSync@8f2c41d", "Degraded", "Failed", "?")
    assert failed.notes[0].startswith("last sync failed: one or more synchronization tasks completed unsuccessfully")
    assert failed.notes[1].startswith("SyncError: Failed sync attempt")
    assert failed.notes[2] == "cannot read Deployment tf-serving/tf-serving: HTTP 404 Not Found"

    unreachable = rows["resnet-onprem-cpu"]
    assert unreachable.notes[-1] == ("no kubeconfig context for cluster https://10.20.0.5:6443: "
                                     "pass --cluster https://10.20.0.5:6443=<context>")
    # The calls the client made: the model's Applications by label, the model-server pods by label.
    assert (ARGOCD, APPS_PATH, {"labelSelector": "tf-serving-gitops/model=resnet"}) in log
    assert (GPU, PODS_PATH, {"labelSelector": status.POD_SELECTOR}) in log


def test_table_is_readable_and_flags_what_is_not_converged(config, log):
    custom = k8s.CustomObjectsApi(recorded_client(ARGOCD, log))
    text = status.render_table(config, status.collect(config, custom, clients_for(log)))
    lines = text.splitlines()
    assert lines[0] == ("model.yaml pins resnet v2 "
                        "(channels_last sha256:21513756bed9…, channels_first sha256:455593a7e89a…)")
    header = lines[2]
    assert header.split() == ["APPLICATION", "CLUSTER", "TARGET", "SYNC", "HEALTH", "LAST", "SYNC", "ROLLOUT",
                              "SERVING", "(ready", "pods)"]
    gpu_line = next(line for line in lines if line.startswith("resnet-gke-gpu-eu "))
    assert "Synced@8f2c41d" in gpu_line and "v2 sha256:455593a7e89a… ×2" in gpu_line
    assert next(line for line in lines if line.startswith("resnet-in-cluster *")).endswith(
        "v1 sha256:111111111111… ×1, v2 sha256:21513756bed9… ×2 (+2 not ready)")
    assert "* resnet-in-cluster: serves v1, v2; model.yaml pins v2 (its Deployment asks for v2: rollout in progress)" \
        in lines
    assert any(line.startswith("resnet-eks-cpu-us *") and line.endswith("nothing") for line in lines)
    # Columns line up: every value starts where its header does.
    column = header.index("ROLLOUT")
    assert gpu_line[column:].startswith("2/2 updated")


def test_no_applications(config, log, monkeypatch):
    empty = k8s.CustomObjectsApi(recorded_client(ARGOCD, log))
    monkeypatch.setattr(empty, "list_namespaced_custom_object", lambda *a, **kw: {"items": []})
    assert "no Argo CD Application carries the label tf-serving-gitops/model=resnet in namespace argocd" in \
        status.render_table(config, status.collect(config, empty, clients_for(log)))


def test_argocd_unreadable_is_one_clear_error(config, log):
    custom = k8s.CustomObjectsApi(recorded_client(GPU, log))  # a cluster without Argo CD: 403 in the routes
    with pytest.raises(UserError, match=r"cannot list Argo CD Applications in namespace argocd: HTTP 403 Forbidden"):
        status.collect(config, custom, clients_for(log))


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: mgmt
clusters:
- {name: mgmt, cluster: {server: "https://argocd.example"}}
- {name: gke-gpu-eu, cluster: {server: "https://34.91.10.2"}}
- {name: eks-us, cluster: {server: "https://4F2A9C.gr7.us-east-1.eks.amazonaws.com"}}
contexts:
- {name: mgmt, context: {cluster: mgmt, user: admin}}
- {name: gpu-eu, context: {cluster: gke-gpu-eu, user: admin}}
- {name: eks-us, context: {cluster: eks-us, user: admin}}
users:
- {name: admin, user: {token: not-a-real-token}}
"""


def test_cli_maps_destinations_to_kubeconfig_contexts(tmp_path, config, log, monkeypatch, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    servers, _, current = status.kubeconfig_servers(str(kubeconfig))
    assert current == "mgmt" and servers["gpu-eu"] == GPU
    used = []

    def new_client_from_config(config_file=None, context=None, **kw):
        used.append(context)
        return recorded_client(servers[context], log)

    monkeypatch.setattr("kubernetes.config.new_client_from_config", new_client_from_config)
    model_yaml = tmp_path / "model.yaml"
    write_baseline(model_yaml, PINNED_V2)
    # The on-prem cluster is reachable through the gpu context only by an explicit mapping (a test of --cluster).
    assert cli.main(["--kubeconfig", str(kubeconfig), "--config", str(model_yaml),
                     "--cluster", "https://10.20.0.5:6443=eks-us"]) == 0
    out = capsys.readouterr().out
    assert sorted(set(used)) == ["eks-us", "gpu-eu", "mgmt"]
    assert "resnet-gke-gpu-eu " in out and "no kubeconfig context" not in out
    assert out.count("cannot read Deployment tf-serving/tf-serving: HTTP 404 Not Found") == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["--kubeconfig", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: kubeconfig file {tmp_path / 'missing'} does not exist"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    assert cli.main(["--kubeconfig", str(kubeconfig), "--context", "nope"]) == 2
    assert "kubeconfig has no context 'nope' (it has eks-us, gpu-eu, mgmt)" in capsys.readouterr().err


def test_a_cluster_still_asking_for_the_old_version_is_called_not_synced(config):
    row = status.Row("resnet-a", "https://a", "cpu", "OutOfSync@1234567", "Healthy", "Succeeded",
                     "2/2 updated, 2 ready, 2 available", {("1", "sha256:" + "1" * 64): 2}, 0, "1")
    done = status.Row("resnet-b", "https://b", "cpu", "Synced@89abcde", "Healthy", "Succeeded",
                      "2/2 updated, 2 ready, 2 available", {("2", A2): 2}, 0, "2")
    text = status.render_table(config, [row, done])
    assert "* resnet-a: serves v1; model.yaml pins v2 (its Deployment still asks for v1: not synced)" in text
    assert any(line.startswith("resnet-a *") for line in text.splitlines())
    assert any(line.startswith("resnet-b  ") for line in text.splitlines())


def test_missing_kubeconfig_file_is_named(tmp_path):
    # issue 13: used to say "no kubeconfig contexts found".
    missing = tmp_path / "nonexistent"
    with pytest.raises(UserError, match=rf"kubeconfig file {missing} does not exist"):
        status.kubeconfig_servers(str(missing))
    with pytest.raises(UserError, match=r"is a directory"):
        status.kubeconfig_servers(str(tmp_path))
