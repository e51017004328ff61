"""The PodMonitor's relabeling proven with a real Prometheus (Debian's package), not an approximation of it.

Two TF Serving-shaped metrics pages on 127.0.0.1 stand in for two pods of the gpu target, one on version 1 and
one (mid-rollout) on version 2. A file_sd file gives Prometheus the targets with the meta labels Kubernetes SD
would attach to those pods (__meta_kubernetes_pod_label_* from the labels the rendered Deployment sets), plus
pods the PodMonitor must not scrape; the scrape job is what the Prometheus Operator generates from the rendered
PodMonitor (operator_config.py). Prometheus' query API must then show model, version, layout, target and
pod-template hash on every TF Serving series, with TF Serving's own labels untouched.
"""
import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.observability import operator_config, tf_serving_page
from tests.observability.helpers import require_binary
from tools import paths
from tools.observability import metrics as m

pytestmark = pytest.mark.slow
METRICS_PATH = "/monitoring/prometheus/metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(page: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page.encode() if self.path == METRICS_PATH else b"not found"
            self.send_response(200 if self.path == METRICS_PATH else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


@pytest.fixture(scope="module")
def gpu_objects():
    from tools import kustomize

    return kustomize.build(paths.REPO_ROOT / paths.OVERLAYS_DIR / "gpu")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, gpu_objects):
    """A real Prometheus scraping two TF Serving-shaped pods through the operator's job for the rendered
    PodMonitor; yields (base URL, {pod: pod labels})."""
    binary = require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    pod_monitor = next(o for o in gpu_objects if o["kind"] == "PodMonitor")
    deployment = next(o for o in gpu_objects if o["kind"] == "Deployment")
    labels_v1 = dict(deployment["spec"]["template"]["metadata"]["labels"])
    labels_v1[m.POD_TEMPLATE_HASH_POD_LABEL] = "6f7c9d8b54"  # set by the Deployment controller on each pod
    version = labels_v1["tf-serving-gitops/model-version"]
    labels_v2 = {**labels_v1, "tf-serving-gitops/model-version": str(int(version) + 1),
                 m.POD_TEMPLATE_HASH_POD_LABEL: "84d5b7c9f6"}
    model = labels_v1["tf-serving-gitops/model-name"]
    ns = pod_monitor["metadata"]["namespace"]
    servers = [serve(tf_serving_page.page(model, int(version), ok=40, failed=2)),
               serve(tf_serving_page.page(model, int(version) + 1, ok=10, failed=0))]
    addr = [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    pods = {"tf-serving-6f7c9d8b54-a1b2c": labels_v1, "tf-serving-84d5b7c9f6-d3e4f": labels_v2}
    groups = [
        operator_config.pod_target(addr[0], ns, "tf-serving-6f7c9d8b54-a1b2c", labels_v1, "http"),
        operator_config.pod_target(addr[1], ns, "tf-serving-84d5b7c9f6-d3e4f", labels_v2, "http"),
        # Not to be scraped: the gRPC port, a pod of another app, a finished pod.
        operator_config.pod_target(addr[0], ns, "tf-serving-6f7c9d8b54-a1b2c", labels_v1, "grpc"),
        operator_config.pod_target(addr[1], ns, "other-app-1", {"app.kubernetes.io/name": "other"}, "http"),
        operator_config.pod_target(addr[1], ns, "tf-serving-old-x", labels_v1, "http", phase="Succeeded"),
    ]
    (tmp / "targets.json").write_text(json.dumps(groups))
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": operator_config.scrape_configs(pod_monitor, str(tmp / "targets.json"))}
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = open(tmp / "prometheus.log", "w")
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            try:
                if len(query(base, f'count by (pod) ({m.REQUEST_COUNT})')) == 2 and \
                        len(query(base, "up == 1")) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus scraped no TF Serving series within 60 s: "
                        + (tmp / "prometheus.log").read_text()[-2000:])
        yield base, pods, ns
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        for s in servers:
            s.shutdown()


def test_every_tf_serving_series_carries_model_version_layout_target_and_hash(prometheus):
    base, pods, ns = prometheus
    series = query(base, '{__name__=~":tensorflow:.+"}')
    names = {s["metric"]["__name__"] for s in series}
    assert {m.REQUEST_COUNT, m.REQUEST_LATENCY + "_bucket", m.QUEUING_LATENCY + "_count", m.LOAD_ATTEMPT_COUNT,
            m.WRAPPED_RUN_COUNT} <= names
    for s in series:
        labels = s["metric"]
        pod = pods[labels["pod"]]
        assert labels[m.LABEL_MODEL] == pod["tf-serving-gitops/model-name"]
        assert labels[m.LABEL_VERSION] == pod["tf-serving-gitops/model-version"]
        assert labels[m.LABEL_LAYOUT] == pod["tf-serving-gitops/model-layout"] == "channels_first"
        assert labels[m.LABEL_TARGET] == pod["tf-serving-gitops/target"] == "gpu"
        assert labels[m.LABEL_POD_TEMPLATE_HASH] == pod[m.POD_TEMPLATE_HASH_POD_LABEL]
        assert labels["namespace"] == ns and labels["container"] == "tf-serving" and labels["endpoint"] == "http"
        assert labels["job"] == f"{ns}/tf-serving"
        assert not any(k.startswith("exported_") for k in labels), labels  # no collision with TF Serving's labels


def test_tf_serving_labels_survive_and_figures_split_by_version(prometheus):
    base, pods, _ = prometheus
    counts = query(base, f'sum by ({m.LABEL_VERSION}, status) ({m.REQUEST_COUNT}{{model_name!=""}})')
    got = {(r["metric"][m.LABEL_VERSION], r["metric"]["status"]): float(r["value"][1]) for r in counts}
    v1 = next(p["tf-serving-gitops/model-version"] for p in pods.values())
    v2 = str(int(v1) + 1)
    assert got == {(v1, "OK"): 40, (v1, "INVALID_ARGUMENT"): 2, (v2, "OK"): 10, (v2, "INVALID_ARGUMENT"): 0}
    # The version a pod's labels pin is the one its TF Serving loaded (what TFServingPinnedVersionNotLoaded reads).
    for r in query(base, f'{m.LOAD_ATTEMPT_COUNT}{{status="success"}}'):
        assert r["metric"]["model_path"].endswith("/" + r["metric"][m.LABEL_VERSION])
    # The latency buckets keep TF Serving's le strings, so the SLO's le matcher finds its bucket.
    bound = m.bucket_at_least(500_000, m.REQUEST_LATENCY_BUCKETS)
    found = query(base, f"{m.REQUEST_LATENCY}_bucket{{le=~{m.le_matcher(bound)}}}")
    assert sorted(r["metric"]["pod"] for r in found) == sorted(pods)


def test_only_the_selected_pods_http_ports_are_scraped(prometheus):
    base, pods, _ = prometheus
    with urllib.request.urlopen(f"{base}/api/v1/targets?state=active", timeout=5) as r:
        active = json.load(r)["data"]["activeTargets"]
    assert sorted(t["labels"]["pod"] for t in active) == sorted(pods)
    assert {t["health"] for t in active} == {"up"}
    # The other three file_sd targets were read and dropped by the operator's keep/drop rules.
    with urllib.request.urlopen(f"{base}/api/v1/targets?state=dropped", timeout=5) as r:
        dropped = json.load(r)["data"]["droppedTargets"]
    assert sorted(t["discoveredLabels"]["__meta_kubernetes_pod_name"] for t in dropped) == sorted(
        ["tf-serving-6f7c9d8b54-a1b2c", "other-app-1", "tf-serving-old-x"])
