"""`make status` for a canary target against recorded API responses (tests/rollout/fixtures/status/): a Rollout
paused at a step, one progressing, one aborted by analysis. The responses go through the kubernetes client's own
request and deserialization code with only the HTTP layer replaced. No live cluster."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from kubernetes import client as k8s

from tests.kube_recording import answer, api_client
from tests.rollout.helpers import canary_data
from tools import paths, status
from tools.config import parse_config
from tools.rollout import status as rollout_status

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "status"
ARGOCD = "https://argocd.example"
CLUSTERS = {"https://35.204.1.10": "paused", "https://35.204.1.11": "progressing", "https://35.204.1.12": "aborted"}
NS = "/namespaces/tf-serving"
PATHS = {f"/apis/apps/v1{NS}/deployments/tf-serving": "deployment.json", f"/api/v1{NS}/pods": "pods.json",
         f"/apis/argoproj.io/v1alpha1{NS}/rollouts/tf-serving": "rollout.json",
         f"/apis/argoproj.io/v1alpha1{NS}/analysisruns": "analysisruns.json"}


class RecordedRest:
    """Answers GETs from the recorded files; anything else is 403 (404 for a Rollout the case lacks)."""

    def __init__(self, host: str, log: list, missing: set[str]):
        self.host, self.log, self.missing = host, log, missing

    def GET(self, url, headers=None, query_params=None, _preload_content=True, _request_timeout=None):
        parts = urlsplit(url)
        self.log.append((self.host, parts.path, dict(query_params or []) or dict(parse_qsl(parts.query))))
        name = None
        if self.host == ARGOCD and parts.path == "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications":
            name = "applications.json"
        elif self.host in CLUSTERS and parts.path in PATHS and PATHS[parts.path] not in self.missing:
            name = f"{CLUSTERS[self.host]}/{PATHS[parts.path]}"
        code = 200 if name else (404 if PATHS.get(parts.path) in self.missing else 403)
        data = (FIXTURES / name).read_bytes() if name else json.dumps({"kind": "Status", "code": code}).encode()
        return answer(code, data)


def recorded_client(host, log, missing=frozenset()):
    return api_client(host, RecordedRest(host, log, set(missing)))


@pytest.fixture
def config():
    data = canary_data()
    data["model"]["version"] = 2
    data["model"]["digests"] = {"channels_last": "sha256:" + "a" * 64, "channels_first": "sha256:" + "b" * 64}
    return parse_config(data, base=paths.REPO_ROOT)


def collect(config, log, missing=frozenset()):
    def clients(destination):
        host = destination.get("server")
        if host not in CLUSTERS:
            return None
        api = recorded_client(host, log, missing)
        return k8s.AppsV1Api(api), k8s.CoreV1Api(api)

    custom = k8s.CustomObjectsApi(recorded_client(ARGOCD, log))
    return {row.application.rsplit("-", 1)[-1]: row for row in status.collect(config, custom, clients)}


def test_a_rollout_paused_at_a_step(config):
    row = collect(config, [])["paused"]
    assert row.rollout == "canary Paused, step 3/5 (pause 10m)"
    assert row.health == "Suspended"
    assert row.notes == [
        "Rollout: CanaryPauseStep",
        "analysis tf-serving-5d8f7c9b6a-4-1 (Step) Successful: golden-set Successful (0 of 1 failed)",
        "analysis tf-serving-5d8f7c9b6a-4 (Background) Running: error-ratio Running last=[0.0009] (0 of 2 failed); "
        "p99-latency-ms Running last=[198.7] (0 of 2 failed)"]
    # One stable v1 pod, one canary v2 pod: both serve while the canary is judged.
    assert row.serving == {("1", "sha256:" + "c" * 64): 1, ("2", "sha256:" + "b" * 64): 1}


def test_a_progressing_rollout_runs_the_golden_set(config):
    row = collect(config, [])["progressing"]
    assert row.rollout == "canary Progressing, step 2/5 (analysis tf-serving-canary-golden-set)"
    assert row.notes[0] == "analysis tf-serving-5d8f7c9b6a-4-1 (Step) Running: golden-set Running"
    assert "error-ratio Running last=[] (0 of 1 failed)" in row.notes[1]


def test_a_rollout_aborted_by_analysis_shows_the_failed_measurements(config):
    row = collect(config, [])["aborted"]
    assert row.rollout == "canary aborted at step 2/5: stable 7c9d5f6b48 serves"
    assert row.notes[0].startswith("Rollout: RolloutAborted: Rollout aborted update to revision 4")
    assert row.notes[2] == ('analysis tf-serving-5d8f7c9b6a-4 (Background) Failed: error-ratio Failed last=[0.0871] '
                            '(2 of 3 failed): Metric "error-ratio" assessed Failed due to failed (2) > failureLimit (1); '
                            'p99-latency-ms Successful last=[250.2] (0 of 3 failed)')
    assert rollout_status.failed_evidence(row.canary) == [row.notes[0].removeprefix("Rollout: ").join(
        ["Rollout Degraded (aborted): ", ""]), row.notes[2]]
    table = status.render_table(config, list(collect(config, []).values()))
    assert "canary aborted at step 2/5" in table and "resnet-gke-gpu-aborted *" in table


def test_the_calls_are_reads_of_the_rollout_and_its_runs(config):
    log = []
    collect(config, log)
    host = "https://35.204.1.12"
    assert (host, f"/apis/argoproj.io/v1alpha1{NS}/rollouts/tf-serving", {}) in log
    assert (host, f"/apis/argoproj.io/v1alpha1{NS}/analysisruns", {}) in log


def test_no_rollout_in_the_cluster_is_a_note_and_forbidden_is_one_line(config):
    row = collect(config, [], missing={"rollout.json"})["paused"]
    assert row.notes == ["no Rollout tf-serving/tf-serving: model.yaml says canary, the cluster has not synced it"]
    assert row.rollout.startswith("0/0 updated")  # the Deployment the Rollout would own, at 0 replicas
    row = collect(config, [], missing={"analysisruns.json"})["paused"]
    assert row.notes == ["cannot read Rollout tf-serving/tf-serving or its AnalysisRuns: HTTP 404 Not Found"]


def test_a_rolling_target_never_asks_for_a_rollout(config):
    log = []
    data = canary_data()
    data["targets"]["gpu"]["rollout"] = {"max_surge": 0, "max_unavailable": 1}
    collect(parse_config(data, base=paths.REPO_ROOT), log)
    assert not [p for _, p, _ in log if "rollouts" in p or "analysisruns" in p]


def test_rollback_quotes_the_failed_analysis_from_the_clusters(config, monkeypatch):
    from tools.rollout import rollback

    monkeypatch.setattr(status, "live_rows", lambda config, **kw: list(collect(config, []).values()))
    lines = rollback.cluster_evidence(config)
    assert lines[0] == ("resnet-gke-gpu-aborted (https://35.204.1.12): Rollout Degraded (aborted): RolloutAborted: "
                        'Rollout aborted update to revision 4: Metric "error-ratio" assessed Failed due to failed (2) > '
                        "failureLimit (1)")
    assert lines[1].startswith("resnet-gke-gpu-aborted (https://35.204.1.12): analysis tf-serving-5d8f7c9b6a-4 "
                               "(Background) Failed: error-ratio Failed last=[0.0871] (2 of 3 failed)")
    assert len(lines) == 2  # the paused and progressing canaries have nothing failed to quote


def test_rollback_without_cluster_access_says_why(config, monkeypatch):
    from tools.errors import UserError
    from tools.rollout import rollback

    def unreachable(config, **kw):
        raise UserError("kubeconfig has no context 'argocd'")

    monkeypatch.setattr(status, "live_rows", unreachable)
    assert rollback.cluster_evidence(config) == ["`make status` could not read the clusters: kubeconfig has no context 'argocd'"]
