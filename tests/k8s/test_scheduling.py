"""The built gpu pod against recorded GPU and CPU node objects of GKE, EKS, AKS and a GPU Operator cluster, with
kube-scheduler's filter rules (tools/doctor/scheduling.py): each targets.gpu.platform fits the GPU nodes it is
meant for and never a CPU node. The node objects (tests/k8s/fixtures/nodes/) are trimmed `kubectl get node -o
json` objects written from each provider's documented labels, taints and instance sizes (each names its source
in the annotation fixture.source); they were not captured from live clusters."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.k8s.helpers import copy_repo
from tools import kustomize, paths, render
from tools.doctor.scheduling import fits, pod_requests, pod_spec_of, quantity, tolerates

NODES_DIR = Path(__file__).resolve().parent / "fixtures" / "nodes"
NODES = {p.stem: json.loads(p.read_text()) for p in sorted(NODES_DIR.glob("*.json"))}
CPU_NODES = ("gke-cpu", "eks-cpu", "aks-cpu")
GPU_NODES = ("gke-l4", "gke-t4", "gke-a100", "eks-g5", "eks-g4dn-gfd", "aks-nc8", "gpu-operator")

# platform -> GPU nodes the pod must fit (every other node, CPU nodes included, it must not).
EXPECTED = {
    "generic": set(GPU_NODES),
    "gke": {"gke-l4", "gke-t4", "gke-a100"},
    # No GPU label on EKS: the nvidia.com/gpu limit selects; GKE and operator nodes tolerated alike.
    "eks": {"gke-l4", "gke-t4", "gke-a100", "eks-g5", "eks-g4dn-gfd", "gpu-operator"},
    "aks": {"aks-nc8"},
    "gpu-operator": {"gpu-operator"},
}


@pytest.fixture(scope="module")
def gpu_pods(tmp_path_factory) -> dict[str, dict]:
    """platform -> the gpu Deployment's pod spec, rendered and built by kustomize from a copy of the repository."""
    pods = {}
    for platform in EXPECTED:
        root = copy_repo(tmp_path_factory.mktemp(platform))
        data = yaml.safe_load((root / paths.MODEL_YAML).read_text())
        data["targets"]["gpu"]["platform"] = platform
        data["targets"]["gpu"].pop("node_selector", None)
        data["targets"]["gpu"].pop("tolerations", None)
        (root / paths.MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
        render.render(root)
        pods[platform] = pod_spec_of(kustomize.build(root / paths.OVERLAYS_DIR / "gpu"))
    return pods


def test_the_fixtures_cover_every_provider_and_cpu_nodes():
    assert set(NODES) == set(CPU_NODES) | set(GPU_NODES) | {"aks-nc4"}
    assert all(n["metadata"]["annotations"]["fixture.source"] for n in NODES.values())


@pytest.mark.parametrize("platform", sorted(EXPECTED))
def test_each_platform_fits_exactly_its_gpu_nodes(gpu_pods, platform):
    fitting = {name for name, node in NODES.items() if not fits(gpu_pods[platform], node)}
    assert fitting == EXPECTED[platform]


def test_the_default_pod_fits_all_four_providers_and_no_cpu_node(built):
    pod = pod_spec_of(built["gpu"])
    for name in GPU_NODES:
        assert fits(pod, NODES[name]) == [], name
    for name in CPU_NODES:
        assert any("Insufficient nvidia.com/gpu" in r for r in fits(pod, NODES[name])), name


def test_the_cpu_pod_fits_cpu_nodes_but_not_tainted_gpu_nodes(built):
    pod = pod_spec_of(built["cpu"])
    for name in CPU_NODES + ("eks-g5",):  # an untainted GPU node takes CPU pods too (EKS's default)
        assert fits(pod, NODES[name]) == [], name
    assert "untolerated taint {nvidia.com/gpu=present:NoSchedule}" in fits(pod, NODES["gke-l4"])[0]


def test_the_reasons_name_the_filter_that_refused(built, gpu_pods):
    assert fits(pod_spec_of(built["gpu"]), NODES["aks-nc4"]) == [
        "Insufficient cpu: the pod requests 4, the node has 3860m allocatable"]
    assert fits(gpu_pods["aks"], NODES["gke-l4"]) == [
        "node(s) didn't match Pod's node affinity/selector: no label accelerator (wanted nvidia)",
        "node(s) had untolerated taint {nvidia.com/gpu=present:NoSchedule}"]
    assert fits(gpu_pods["gke"], NODES["eks-g5"]) == [
        "node(s) didn't match Pod's node affinity/selector: required cloud.google.com/gke-accelerator Exists"]
    cordoned = copy.deepcopy(NODES["gke-l4"])
    cordoned["spec"]["unschedulable"] = True
    assert "node(s) were unschedulable (cordoned)" in fits(gpu_pods["gke"], cordoned)
    # A GPU already taken by a running pod.
    assert fits(gpu_pods["gke"], NODES["gke-l4"], used={"nvidia.com/gpu": quantity(1)}) == [
        "Insufficient nvidia.com/gpu: the pod requests 1, the node has 0 free"]


def test_pod_requests_follow_the_scheduler():
    spec = {"initContainers": [{"resources": {"requests": {"cpu": "2"}}},
                               {"restartPolicy": "Always", "resources": {"limits": {"memory": "1Gi"}}}],
            "containers": [{"resources": {"limits": {"cpu": "500m", "nvidia.com/gpu": "1"}}},
                           {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}],
            "overhead": {"cpu": "100m"}}
    got = pod_requests(spec)
    assert got["cpu"] == quantity("2.1") and got["nvidia.com/gpu"] == 1 and got["memory"] == quantity("1Gi")


@pytest.mark.parametrize("toleration, taint, ok", [
    ({"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
     {"key": "sku", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "sku", "operator": "Equal", "value": "gpu"}, {"key": "sku", "value": "cpu", "effect": "NoSchedule"}, False),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
     {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"}, False),
    ({"operator": "Exists"}, {"key": "anything", "effect": "NoExecute"}, True),
])
def test_toleration_matching(toleration, taint, ok):
    assert tolerates(toleration, taint) is ok


# --- The topology spread cannot strand a scale-up (k8s/base/deployment.yaml, ScheduleAnyway) ---
from tools.doctor.scheduling import schedule_replicas, spread_problems  # noqa: E402


def _two_gpu_node():
    node = copy.deepcopy(NODES["gpu-operator"])  # 2 GPUs, 31.5 CPUs: room for two serving pods
    return node


def test_do_not_schedule_would_strand_the_second_replica_on_a_free_gpu(built):
    """One node with two free GPUs plus one CPU node. With whenUnsatisfiable DoNotSchedule the CPU node counts as
    an empty domain (the pod tolerates it: no taint, no selector), so the second replica's skew on the GPU node is
    2 and it stays Pending although a GPU is free. ScheduleAnyway, what the base ships, places both."""
    deployment = next(o for o in built["gpu"] if o["kind"] == "Deployment")
    spec = copy.deepcopy(deployment["spec"]["template"]["spec"])
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    nodes = [_two_gpu_node(), NODES["eks-cpu"]]
    gpu_node = nodes[0]["metadata"]["name"]
    assert schedule_replicas(spec, labels, nodes, 3) == [gpu_node, gpu_node, None]  # the third: no GPU left

    strict = copy.deepcopy(spec)
    strict["topologySpreadConstraints"][0]["whenUnsatisfiable"] = "DoNotSchedule"
    assert schedule_replicas(strict, labels, nodes, 2) == [gpu_node, None]
    assert spread_problems(strict, labels, nodes[0], nodes, {gpu_node: 1}) == [
        "node(s) didn't match pod topology spread constraints (kubernetes.io/hostname: skew 2 > maxSkew 1)"]


def test_the_built_spread_never_filters(built):
    for overlay in ("cpu", "gpu"):
        deployment = next(o for o in built[overlay] if o["kind"] == "Deployment")
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["whenUnsatisfiable"] for c in constraints} == {"ScheduleAnyway"}
