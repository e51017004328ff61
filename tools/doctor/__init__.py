"""`make doctor`: is a live cluster ready for the first sync of this repository? Reads only.

    make doctor [ARGS="--context gke-gpu-eu --target gpu"]
    python -m tools doctor [--kubeconfig PATH] [--context CTX] [--argocd-context CTX] [--target NAME]

Prints one line per check with the fix when it fails (tools/doctor/diagnose.py): Kubernetes version in the
supported range; Argo CD installed and in its supported range; the ApplicationSet's cluster label on the
registered clusters; metrics-server; for a GPU target, the nodes with allocatable nvidia.com/gpu the built gpu pod
fits (kube-scheduler's filter rules, tools/doctor/scheduling.py) or why it fits none; the namespace's Pod Security
labels; the ServiceAccount's cloud identity when the store needs one (for aks also the webhook's label on the
rendered pods); image pull failures in the namespace's
events; and for what the target's overlay renders from model.yaml `observability:`
(tools/doctor/observability_checks.py): the Prometheus Operator's CRDs and a Prometheus that selects the
PodMonitor and PrometheusRule, KEDA (CRD, operator, external metrics API, no second HPA) for a ScaledObject,
and a DCGM exporter on the GPU nodes when alerts or dashboard read DCGM series. Exit 1 if any check fails; a
warning ("!", only the DCGM exporter's: GPU alerts are extras) does not.

Uses the kubernetes Python client with GET requests only. Tested against recorded API responses of a ready and a
broken cluster (tests/doctor/), never against a live cluster.
"""
from __future__ import annotations

from pathlib import Path

from tools import kustomize, paths
from tools.config import Config
from tools.doctor.cluster import ClusterError
from tools.doctor.diagnose import _gpus, diagnose
from tools.doctor.findings import Finding
from tools.doctor.scheduling import pod_spec_of
from tools.errors import UserError
from tools.render import names


def built_pod(objects: list[dict]) -> tuple[dict, list[str]]:
    """The built overlay's serving pod spec and every image its pods use."""
    images = sorted({c["image"] for o in objects if o.get("kind") in ("Deployment", "Job")
                     for c in (o["spec"]["template"]["spec"].get("initContainers") or [])
                     + o["spec"]["template"]["spec"]["containers"]})
    return pod_spec_of(objects, name=names.DEPLOYMENT), images


def choose_target(config: Config, cluster, requested: str | None) -> str:
    """--target, else the GPU target when the cluster has allocatable GPUs, else the CPU target."""
    if requested:
        if requested not in config.targets:
            raise UserError(f"--target {requested!r}: model.yaml has targets {', '.join(config.targets)}")
        return requested
    gpu = [t.name for t in config.targets.values() if t.is_gpu]
    cpu = [t.name for t in config.targets.values() if not t.is_gpu]
    try:
        has_gpus = any(_gpus(n) > 0 for n in cluster.nodes())
    except ClusterError:  # the gpu check reports it
        has_gpus = False
    return (gpu if has_gpus and gpu else cpu or gpu)[0]


def run(config: Config, cluster, argocd_cluster=None, target: str | None = None,
        repo_root: Path = paths.REPO_ROOT) -> tuple[str, list[Finding]]:
    target = choose_target(config, cluster, target)
    objects = kustomize.build(Path(repo_root) / paths.OVERLAYS_DIR / target)
    pod, images = built_pod(objects)
    findings = diagnose(cluster, config, pod if config.targets[target].is_gpu else None, images, argocd_cluster,
                        objects)
    return target, findings
