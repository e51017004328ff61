"""The checks of `make doctor`: is this cluster ready for the first Argo CD sync of this repository?

    findings = diagnose(cluster, config, gpu_pod, target="gpu")    # [Finding(check, ok, message, fix), ...]

One finding per check, each with the fix when it fails. A check that cannot read what it needs (RBAC, a
connection error) fails with that reason instead of guessing. Upstream facts used:
- supported Kubernetes: the versions `make check` validates every object against (tools/check/schema.py);
- supported Argo CD: the releases whose CRDs `make check` validates against (tools/argocd/crds.py), read from the
  argocd-server image tag (label app.kubernetes.io/name=argocd-server, argoproj/argo-cd manifests/base/server);
- ApplicationSet cluster generator: clusters are the Secrets labelled argocd.argoproj.io/secret-type=cluster in
  Argo CD's namespace (argo-cd docs/operator-manual/declarative-setup.md), the generator matches their labels;
- metrics-server registers APIService v1beta1.metrics.k8s.io (kubernetes-sigs/metrics-server manifests) that the
  HPA reads; Available=True means it answers;
- Pod Security admission levels privileged/baseline/restricted (kubernetes.io/docs/concepts/security/pod-security-admission);
- image pull failures are kubelet events with reason Failed ("Failed to pull image ...") or BackOff ("Back-off
  pulling image ...") (kubernetes pkg/kubelet/images/image_manager.go, events.go).
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Callable

from tools.argocd.crds import SUPPORTED as ARGOCD_SUPPORTED
from tools.check.schema import KUBERNETES_VERSIONS
from tools.config import Config
from tools.doctor import observability_checks
from tools.doctor.cluster import Cluster, ClusterError
from tools.doctor.findings import Finding
from tools.doctor.scheduling import fits, quantity
from tools.render import names

GPU = names.GPU_RESOURCE
CLUSTER_SECRET_SELECTOR = "argocd.argoproj.io/secret-type=cluster"
ARGOCD_SERVER_SELECTOR = "app.kubernetes.io/name=argocd-server"
ARGOCD_CRD = "applications.argoproj.io"
METRICS_API_SERVICE = "v1beta1.metrics.k8s.io"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_LEVELS = ("privileged", "baseline", "restricted")


def _minor(text: str) -> int:
    return int(re.match(r"\d+", str(text))[0])


def check_kubernetes_version(cluster: Cluster, **_) -> Finding:
    v = cluster.version()
    have = (int(v["major"]), _minor(v["minor"]))
    lo, hi = (tuple(int(p) for p in KUBERNETES_VERSIONS[i].split(".")) for i in (0, -1))
    supported = f"{KUBERNETES_VERSIONS[0]}-{KUBERNETES_VERSIONS[-1]}"
    if lo <= have <= hi:
        return Finding("kubernetes", True, f"{v.get('gitVersion')} (supported {supported})")
    return Finding("kubernetes", False, f"{v.get('gitVersion')} is outside the supported {supported}",
                   f"upgrade the cluster to {supported}" if have < lo else
                   f"add {have[0]}.{have[1]} to tools/check/schema.py KUBERNETES_VERSIONS and run make check")


def _argocd_version(image: str) -> tuple[int, int, int] | None:
    m = re.search(r":v?(\d+)\.(\d+)\.(\d+)", image)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def check_argocd(cluster: Cluster, config: Config, **_) -> Finding:
    ns = config.deploy.argocd_namespace
    lo, hi = ARGOCD_SUPPORTED[0], ARGOCD_SUPPORTED[-1]
    install = f"install Argo CD {lo[:-2]}.x-{hi[:-2]}.x into namespace {ns} (argo-cd docs/getting_started.md)"
    if cluster.crd(ARGOCD_CRD) is None:
        return Finding("argocd", False, f"CustomResourceDefinition {ARGOCD_CRD} not found: Argo CD is not installed "
                       "here", install + ", or run doctor with --argocd-context <the cluster it runs in>")
    servers = cluster.deployments(ns, ARGOCD_SERVER_SELECTOR)
    images = [c["image"] for d in servers for c in d["spec"]["template"]["spec"]["containers"]]
    versions = [v for v in map(_argocd_version, images) if v]
    if not versions:
        return Finding("argocd", False, f"no argocd-server Deployment with a versioned image in namespace {ns}",
                       f"set deploy.argocd_namespace in model.yaml to Argo CD's namespace, or {install}")
    version = versions[0]
    text = "v" + ".".join(map(str, version))
    low, high = (tuple(int(p) for p in r.lstrip("v").split(".")[:2]) for r in (lo, hi))
    if low <= version[:2] <= high:
        return Finding("argocd", True, f"{text} in namespace {ns} (supported {lo}-{hi[:-2]}.x)")
    why = "clusterResourceWhitelist[].name needs 3.3" if version[:2] < low else "newer than the CRDs make check knows"
    return Finding("argocd", False, f"{text} is outside the supported {lo}-{hi[:-2]}.x ({why})",
                   f"upgrade Argo CD to {hi}" if version[:2] < low else
                   "vendor its CRDs: python -m tools.argocd.crds <argo-cd .git> <tag> tools/argocd/crds/argocd-<tag>.json")


def check_cluster_labels(cluster: Cluster, config: Config, **_) -> Finding:
    ns = config.deploy.argocd_namespace
    key, value = config.deploy.gpu_cluster_label
    secrets = cluster.secret_labels(ns, CLUSTER_SECRET_SELECTOR)
    gpu_targets = [t.name for t in config.targets.values() if t.is_gpu]
    cpu_targets = [t.name for t in config.targets.values() if not t.is_gpu]
    gpu = sorted(n for n, labels in secrets.items() if labels.get(key) == value)
    cpu = sorted(n for n in secrets if n not in gpu)
    label_fix = f"kubectl -n {ns} label secret <cluster secret> {key}={value}"
    if not secrets:
        return Finding("applicationset clusters", False, f"no cluster Secret (label {CLUSTER_SECRET_SELECTOR}) in "
                       f"{ns}: the ApplicationSet generates no Application",
                       f"argocd cluster add <context>, then for a GPU cluster {label_fix}")
    summary = f"{len(gpu)} labelled {key}={value} ({', '.join(gpu) or '-'}) -> {'/'.join(gpu_targets) or 'none'}; " \
              f"{len(cpu)} other ({', '.join(cpu) or '-'}) -> {'/'.join(cpu_targets) or 'none'}"
    if gpu_targets and not gpu:
        return Finding("applicationset clusters", False, f"{summary}: no cluster gets the GPU overlay", label_fix)
    return Finding("applicationset clusters", True, summary)


def check_metrics_server(cluster: Cluster, **_) -> Finding:
    fix = "install metrics-server (kubectl apply -f https://github.com/kubernetes-sigs/metrics-server/releases/" \
          "latest/download/components.yaml); the HPA reads CPU from it and Argo CD >= 3.5 calls an HPA without " \
          "metrics Degraded"
    service = cluster.api_service(METRICS_API_SERVICE)
    if service is None:
        return Finding("metrics-server", False, f"APIService {METRICS_API_SERVICE} not found", fix)
    available = next((c for c in (service.get("status") or {}).get("conditions") or [] if c["type"] == "Available"), {})
    if available.get("status") != "True":
        return Finding("metrics-server", False, f"APIService {METRICS_API_SERVICE} not Available "
                       f"({available.get('reason', 'no status')}: {available.get('message', '')})".rstrip(": )") + ")",
                       "kubectl -n kube-system logs deploy/metrics-server; " + fix)
    return Finding("metrics-server", True, f"APIService {METRICS_API_SERVICE} Available")


def _gpus(node: dict) -> Decimal:
    return quantity(((node.get("status") or {}).get("allocatable") or {}).get(GPU, "0"))


def check_gpu_nodes(cluster: Cluster, gpu_pod: dict | None = None, **_) -> Finding:
    nodes = cluster.nodes()
    gpu_nodes = [n for n in nodes if _gpus(n) > 0]
    if not gpu_nodes:
        return Finding("gpu nodes", False, f"none of {len(nodes)} nodes has allocatable {GPU}",
                       "add a GPU node pool and install the NVIDIA driver and device plugin (GKE installs them; "
                       "EKS accelerated AMIs; AKS GPU pools; or the NVIDIA GPU Operator)")
    verdicts = {n["metadata"]["name"]: fits(gpu_pod, n) for n in gpu_nodes}
    fitting = sorted(name for name, reasons in verdicts.items() if not reasons)
    if fitting:
        return Finding("gpu nodes", True, f"the gpu pod fits {len(fitting)} of {len(gpu_nodes)} GPU nodes "
                       f"({', '.join(fitting)})")
    why = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in sorted(verdicts.items()))
    return Finding("gpu nodes", False, f"the gpu pod fits none of {len(gpu_nodes)} GPU nodes: {why}",
                   "set targets.gpu.platform (or node_selector/tolerations) in model.yaml to match these nodes, "
                   "or lower targets.gpu.resources, then make render")


def check_pod_security(cluster: Cluster, config: Config, **_) -> Finding:
    ns = config.deploy.namespace
    namespace = cluster.namespace(ns)
    if namespace is None:
        return Finding("pod security", True, f"namespace {ns} does not exist yet: the first sync creates it with "
                       "enforce=restricted")
    labels = namespace["metadata"].get("labels") or {}
    bad = {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")
           and not k.endswith("-version") and v not in PSA_LEVELS}
    if bad:
        return Finding("pod security", False, f"namespace {ns} has invalid Pod Security labels "
                       f"{', '.join(f'{k}={v}' for k, v in sorted(bad.items()))}",
                       f"kubectl label namespace {ns} --overwrite {PSA_ENFORCE}=restricted (the pods meet restricted)")
    level = labels.get(PSA_ENFORCE, "privileged (no label)")
    return Finding("pod security", True, f"namespace {ns} enforces {level}; the pods meet restricted")


def check_identity(cluster: Cluster, config: Config, **_) -> Finding:
    ns, sa_name = config.deploy.namespace, names.SERVICE_ACCOUNT
    identity = config.store.identity
    if identity is None:
        if config.store.scheme in ("gs", "s3", "az"):
            return Finding("store identity", False, f"store.uri {config.store.uri} needs a cloud identity and "
                           "model.yaml sets no store.identity: the init step's fetch gets 403",
                           "set store.identity in model.yaml (gke: <gsa e-mail>, eks: <role ARN> or aks: <client "
                           "ID>), make render, and create the IAM binding (docs/deployment.md)")
        return Finding("store identity", True, f"{config.store.scheme}:// store needs no cloud identity")
    # Azure's webhook injects the token only into pods with its label: a rendered overlay that predates
    # store.identity would sync a ServiceAccount that looks right and pods that still get 403.
    unlabelled = _overlays_missing_pod_labels(config, identity.pod_labels)
    if unlabelled:
        labels = ", ".join(f"{k}={v}" for k, v in identity.pod_labels.items())
        return Finding("store identity", False, f"the pod template rendered in {', '.join(unlabelled)} lacks "
                       f"{labels}, so the identity webhook leaves the pods alone", "make render and commit k8s/")
    want = identity.annotations
    shown = ", ".join(f"{k}={v}" for k, v in want.items())
    sa = cluster.service_account(ns, sa_name)
    if sa is None:
        return Finding("store identity", True, f"ServiceAccount {ns}/{sa_name} is created by the first sync with "
                       f"{shown}")
    have = sa["metadata"].get("annotations") or {}
    wrong = [k for k in want if have.get(k) != want[k]]
    if wrong:
        return Finding("store identity", False, f"ServiceAccount {ns}/{sa_name} has "
                       f"{', '.join(f'{k}={have.get(k)}' for k in wrong)}, model.yaml store.identity says "
                       f"{', '.join(want[k] for k in wrong)}", "sync the Application (Argo CD sets it) or remove the "
                       "conflicting annotation")
    labelled = f" and the rendered pods carry {', '.join(f'{k}={v}' for k, v in identity.pod_labels.items())}" \
        if identity.pod_labels else ""
    return Finding("store identity", True, f"ServiceAccount {ns}/{sa_name} has {shown}{labelled}")


def _overlays_missing_pod_labels(config: Config, labels: dict[str, str]) -> list[str]:
    """Overlays (k8s/overlays/<target>) whose serving pod template lacks `labels` (none asked: [])."""
    if not labels:
        return []
    from tools import kustomize, paths

    missing = []
    for target in config.targets:
        objects = kustomize.build(config.path.resolve().parent / paths.OVERLAYS_DIR / target)
        deployment = next(o for o in objects if o.get("kind") == "Deployment"
                          and o["metadata"].get("name") == names.DEPLOYMENT)
        have = deployment["spec"]["template"]["metadata"].get("labels") or {}
        if any(have.get(k) != v for k, v in labels.items()):
            missing.append(f"{paths.OVERLAYS_DIR}/{target}")
    return missing


def check_image_pulls(cluster: Cluster, config: Config, images: list[str] | None = None, **_) -> Finding:
    ns = config.deploy.namespace
    failures: dict[str, str] = {}
    for event in cluster.events(ns):
        message = event.get("message") or ""
        if event.get("reason") not in ("Failed", "BackOff", "ErrImagePull", "ImagePullBackOff") or "image" not in message:
            continue
        for image in images or []:
            if f'"{image}"' in message or f" {image}" in message:
                failures.setdefault(image, message.split("\n")[0][:200])
    if failures:
        return Finding("image pulls", False, "; ".join(f"{img}: {msg}" for img, msg in sorted(failures.items())),
                       "check the image name and tag in model.yaml, the registry's reachability and pull secrets")
    return Finding("image pulls", True, f"no pull failures of the {len(images or [])} images in {ns}'s events"
                   if cluster.namespace(ns) else f"namespace {ns} not synced yet: nothing pulled")


CHECKS: dict[str, Callable[..., Finding]] = {
    "kubernetes": check_kubernetes_version,
    "argocd": check_argocd,
    "applicationset clusters": check_cluster_labels,
    "metrics-server": check_metrics_server,
    "gpu nodes": check_gpu_nodes,
    "pod security": check_pod_security,
    "store identity": check_identity,
    "image pulls": check_image_pulls,
    **observability_checks.CHECKS,  # each returns None when the target's overlay does not need it
}


def diagnose(cluster: Cluster, config: Config, gpu_pod: dict | None, images: list[str],
             argocd_cluster: Cluster | None = None, objects: list[dict] | None = None) -> list[Finding]:
    """Every check against `cluster`; the Argo CD checks against `argocd_cluster` (default the same); the
    observability checks for what `objects` (the target's built overlay) contains."""
    findings = []
    for name, check in CHECKS.items():
        if name == "gpu nodes" and gpu_pod is None:
            continue
        target = argocd_cluster if name in ("argocd", "applicationset clusters") and argocd_cluster else cluster
        try:
            finding = check(target, config=config, gpu_pod=gpu_pod, images=images, objects=objects or [])
        except ClusterError as exc:
            finding = Finding(name, False, str(exc), "grant read access (get/list) to this kubeconfig user")
        if finding is not None:
            findings.append(finding)
    return findings


