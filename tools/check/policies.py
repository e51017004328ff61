"""Policy checks over a built overlay: what `make check` enforces and tests/k8s proves with mutated objects.

    from tools.check.policies import Overlay, POLICIES, run_policies
    violations = run_policies(Overlay("cpu", objects, config))   # {policy name: [violation, ...]}

Each policy is a function `(Overlay) -> list[str]` of one-line violations ("Deployment/tf-serving container
fetch-model: allowPrivilegeEscalation must be false"), registered with @policy in POLICIES. They read the
objects kustomize built, so they judge what a cluster would receive, not the templates.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator

from tools.check import tfserving
from tools.config import Config, Target
from tools.render import fetch_source, model_base_path, names

Obj = dict[str, Any]
Policy = Callable[["Overlay"], list[str]]

POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
# Pod Security Standard "restricted": the only volume types it allows.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}
MIN_UID = 10000
GUARANTEED_RESOURCES = ("cpu", "memory", "ephemeral-storage")
MIN_STARTUP_SECONDS = 300


@dataclass
class Overlay:
    name: str  # the folder under k8s/overlays/, which is the target's name in model.yaml
    objects: list[Obj]
    config: Config

    @property
    def target(self) -> Target | None:
        return self.config.targets.get(self.name)

    def find(self, kind: str, name: str | None = None) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind and (name is None or _name(o) == name)]

    def configmap(self, name: str) -> Obj | None:
        found = self.find("ConfigMap", name)
        return found[0] if found else None

    def serving_deployment(self) -> Obj | None:
        found = self.find("Deployment", names.DEPLOYMENT)
        return found[0] if found else None


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _where(obj: Obj, container: Obj | None = None) -> str:
    text = f"{obj.get('kind')}/{_name(obj)}"
    return f"{text} container {container.get('name')}" if container is not None else text


def pod_templates(objects: list[Obj]) -> Iterator[tuple[Obj, Obj, Obj]]:
    """(object, pod template metadata, pod spec) for every object that creates pods (CronJobs included)."""
    for obj in objects:
        kind = obj.get("kind")
        if kind in POD_TEMPLATE_KINDS:
            template = (obj.get("spec") or {}).get("template") or {}
        elif kind == "CronJob":
            template = (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        elif kind == "Pod":
            template = obj
        else:
            continue
        yield obj, template.get("metadata") or {}, template.get("spec") or {}


def all_containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def container(spec: Obj, name: str, init: bool = False) -> Obj | None:
    for c in spec.get("initContainers" if init else "containers") or []:
        if c.get("name") == name:
            return c
    return None


def env_of(overlay: Overlay, c: Obj) -> dict[str, str]:
    """A container's environment as the kubelet builds it: envFrom ConfigMaps, then env (which wins)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        cm = overlay.configmap(ref) if ref else None
        if cm:
            env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
    for item in c.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in (item.get("valueFrom") or {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            cm = overlay.configmap(ref.get("name", ""))
            if cm and ref.get("key") in (cm.get("data") or {}):
                env[item["name"]] = str(cm["data"][ref["key"]])
    return env


def mounted_configmap(overlay: Overlay, spec: Obj, c: Obj, mount_path: str) -> Obj | None:
    """The ConfigMap object a container sees at mount_path, if any."""
    for mount in c.get("volumeMounts") or []:
        if mount.get("mountPath") == mount_path:
            for volume in spec.get("volumes") or []:
                if volume.get("name") == mount.get("name") and "configMap" in volume:
                    return overlay.configmap(volume["configMap"].get("name", ""))
    return None


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """"repo[:tag][@digest]" -> (repo, tag, digest); a registry port is not a tag."""
    name, _, digest = ref.partition("@")
    head, _, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    else:
        tag = None
    return (f"{head}/{last}" if head else last), tag, (digest or None)


_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?")
_SUFFIXES = {"Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
             "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60, "n": Decimal("1e-9"), "u": Decimal("1e-6"),
             "m": Decimal("1e-3"), "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"),
             "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18")}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity ("4", "3500m", "16Gi", "1e3") as a number; None if it is not one."""
    m = _QUANTITY.fullmatch(str(value).strip()) if value is not None else None
    if not m:
        return None
    suffix = m[2] or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(m[1]) * Decimal(10) ** int(suffix[1:])
    return Decimal(m[1]) * _SUFFIXES.get(suffix, Decimal(1))


POLICIES: dict[str, Policy] = {}


def policy(name: str) -> Callable[[Policy], Policy]:
    def register(fn: Policy) -> Policy:
        POLICIES[name] = fn
        return fn

    return register


def run_policies(overlay: Overlay, only: list[str] | None = None) -> dict[str, list[str]]:
    return {name: fn(overlay) for name, fn in POLICIES.items() if only is None or name in only}


@policy("pod-security")
def pod_security(overlay: Overlay) -> list[str]:
    """Pod Security Standard "restricted", plus a read-only root file system, a UID >= 10000 and no API token."""
    out: list[str] = []
    for obj, _, spec in pod_templates(overlay.objects):
        where = _where(obj)
        pod_sc = spec.get("securityContext") or {}
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                out.append(f"{where}: {field} must not be set")
        if spec.get("automountServiceAccountToken") is not False:
            out.append(f"{where}: automountServiceAccountToken must be false (nothing here calls the API server)")
        for volume in spec.get("volumes") or []:
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUME_TYPES:
                out.append(f"{where}: volume {volume.get('name')} of type {', '.join(sorted(kinds))} "
                           "is not allowed by the restricted standard")
        for c in all_containers(spec):
            cw, sc = _where(obj, c), c.get("securityContext") or {}
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                out.append(f"{cw}: runAsNonRoot must be true")
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            if not isinstance(uid, int) or uid < MIN_UID:
                out.append(f"{cw}: runAsUser must be an explicit UID >= {MIN_UID} (the serving image defines "
                           f"no user), got {uid}")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                out.append(f"{cw}: seccompProfile.type must be RuntimeDefault, got {seccomp}")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{cw}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                out.append(f"{cw}: privileged must not be set")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(f"{cw}: capabilities.drop must include ALL")
            if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
                out.append(f"{cw}: capabilities.add may only hold NET_BIND_SERVICE")
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{cw}: readOnlyRootFilesystem must be true (writable paths are emptyDirs)")
            if any(p.get("hostPort") for p in c.get("ports") or []):
                out.append(f"{cw}: hostPort must not be set")
    for sa in overlay.find("ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            out.append(f"{_where(sa)}: automountServiceAccountToken must be false")
    for ns in overlay.find("Namespace"):
        if ((ns.get("metadata") or {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            out.append(f"{_where(ns)}: label pod-security.kubernetes.io/enforce must be restricted")
    return out


@policy("probes")
def probes(overlay: Overlay) -> list[str]:
    """Long-running containers have readiness and liveness probes that differ; TF Serving has a long startup probe."""
    out: list[str] = []
    for obj, _, spec in pod_templates(overlay.objects):
        if obj.get("kind") not in LONG_RUNNING_KINDS:
            continue
        for c in spec.get("containers") or []:
            cw = _where(obj, c)
            readiness, liveness = c.get("readinessProbe"), c.get("livenessProbe")
            if not readiness:
                out.append(f"{cw}: no readinessProbe")
            if not liveness:
                out.append(f"{cw}: no livenessProbe")

            def action(probe: Obj) -> Obj:
                return {k: v for k, v in probe.items() if k in ("exec", "httpGet", "tcpSocket", "grpc")}

            if readiness and liveness and action(readiness) == action(liveness):
                out.append(f"{cw}: livenessProbe must check something else than readinessProbe (a model that is "
                           "not AVAILABLE should leave the Service, not restart the pod in a loop)")
    deployment = overlay.serving_deployment()
    if deployment is not None:
        spec = deployment["spec"]["template"]["spec"]
        c = container(spec, names.SERVING_CONTAINER)
        if c is None:
            out.append(f"{_where(deployment)}: no {names.SERVING_CONTAINER} container")
        else:
            startup = c.get("startupProbe")
            if not startup:
                out.append(f"{_where(deployment, c)}: no startupProbe (loading and warming up a model takes minutes)")
            else:
                seconds = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
                if seconds < MIN_STARTUP_SECONDS:
                    out.append(f"{_where(deployment, c)}: startupProbe allows {seconds} s, under the "
                               f"{MIN_STARTUP_SECONDS} s a model load and warmup may take")
            command = ((c.get("readinessProbe") or {}).get("exec") or {}).get("command") or []
            if not any(str(part).endswith("model-ready.sh") for part in command):
                out.append(f"{_where(deployment, c)}: readinessProbe must run model-ready.sh (the pinned version "
                           "is AVAILABLE); TF Serving's REST status answers 200 while LOADING")
    return out


@policy("resources")
def resources(overlay: Overlay) -> list[str]:
    """Requests and limits for cpu, memory and ephemeral storage everywhere; TF Serving's equal and from model.yaml."""
    out: list[str] = []
    for obj, _, spec in pod_templates(overlay.objects):
        for c in all_containers(spec):
            cw, res = _where(obj, c), c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            for name in GUARANTEED_RESOURCES:
                if name not in requests or name not in limits:
                    out.append(f"{cw}: needs requests and limits for {name}")
                elif obj.get("kind") in LONG_RUNNING_KINDS and quantity(requests[name]) != quantity(limits[name]):
                    out.append(f"{cw}: {name} requests ({requests[name]}) must equal limits ({limits[name]}) "
                               "for Guaranteed QoS")
    target, deployment = overlay.target, overlay.serving_deployment()
    if target is not None and deployment is not None:
        c = container(deployment["spec"]["template"]["spec"], names.SERVING_CONTAINER) or {}
        limits = (c.get("resources") or {}).get("limits") or {}
        wanted = {"cpu": target.resources.cpu, "memory": target.resources.memory,
                  "ephemeral-storage": target.resources.ephemeral_storage}
        for name, value in wanted.items():
            if quantity(limits.get(name)) != quantity(value):
                out.append(f"{_where(deployment, c)}: {name} limit is {limits.get(name)}, model.yaml "
                           f"targets.{target.name}.resources says {value}")
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        for var in ("TF_INTRA_OP_PARALLELISM", "TF_INTER_OP_PARALLELISM"):
            if env.get(var) != str(target.resources.cpu_cores):
                out.append(f"{_where(deployment, c)}: {var} is {env.get(var)}, want {target.resources.cpu_cores} "
                           "(the CPU limit in whole cores)")
    return out


@policy("gpu")
def gpu(overlay: Overlay) -> list[str]:
    """nvidia.com/gpu only in GPU targets' overlays: in limits (requests equal if set), with toleration and selector."""
    out: list[str] = []
    target = overlay.target
    is_gpu = target is not None and target.is_gpu
    for obj, _, spec in pod_templates(overlay.objects):
        for c in all_containers(spec):
            res = c.get("resources") or {}
            limit = (res.get("limits") or {}).get(names.GPU_RESOURCE)
            request = (res.get("requests") or {}).get(names.GPU_RESOURCE)
            if (limit is not None or request is not None) and not is_gpu:
                out.append(f"{_where(obj, c)}: {names.GPU_RESOURCE} in the {overlay.name} overlay, whose target "
                           "has no GPU")
            elif request is not None and quantity(request) != quantity(limit):
                out.append(f"{_where(obj, c)}: {names.GPU_RESOURCE} requests ({request}) must equal limits ({limit})")
    deployment = overlay.serving_deployment()
    if is_gpu and deployment is not None:
        spec = deployment["spec"]["template"]["spec"]
        c = container(spec, names.SERVING_CONTAINER) or {}
        limit = ((c.get("resources") or {}).get("limits") or {}).get(names.GPU_RESOURCE)
        if quantity(limit) != Decimal(target.gpus):
            out.append(f"{_where(deployment, c)}: {names.GPU_RESOURCE} limit is {limit}, model.yaml "
                       f"targets.{target.name}.gpus says {target.gpus}")
        # The pod's placement is exactly model.yaml's (platform + explicit fields, tools/config.py GPU_PLATFORMS).
        scheduling = target.scheduling
        tolerations = spec.get("tolerations") or []
        for t in scheduling.tolerations:
            if t.as_dict() not in tolerations:
                out.append(f"{_where(deployment)}: no toleration {t.as_dict()} (model.yaml targets.{target.name} "
                           f"platform {target.platform})")
        selector = spec.get("nodeSelector") or {}
        if selector != scheduling.node_selector:
            out.append(f"{_where(deployment)}: nodeSelector {selector}, model.yaml says {scheduling.node_selector}")
        terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        exists = {e.get("key") for term in terms for e in term.get("matchExpressions") or []
                  if e.get("operator") == "Exists"}
        for key in scheduling.required_label_keys:
            if key not in exists:
                out.append(f"{_where(deployment)}: no required node affinity on label {key} (platform {target.platform})")
        if target.gpu_memory_fraction is not None:
            flag = f"--per_process_gpu_memory_fraction={target.gpu_memory_fraction}"
            if flag not in (c.get("args") or []):
                out.append(f"{_where(deployment, c)}: args lack {flag}")
    return out


@policy("cpu_math")
def cpu_math(overlay: Overlay) -> list[str]:
    """The serving container runs with its CPU target's oneDNN and math settings (model.yaml onednn, math,
    frozen_weights), and TF Serving's --mixed_precision only where a target asks for bf16."""
    from tools.config import ONEDNN_ENV
    from tools.onednn import ASSUME_FROZEN_ENV

    target, deployment = overlay.target, overlay.serving_deployment()
    if target is None or deployment is None:
        return []
    c = container(deployment["spec"]["template"]["spec"], names.SERVING_CONTAINER) or {}
    out: list[str] = []
    flags = [a for a in c.get("args") or [] if str(a).startswith("--mixed_precision")]
    wanted = target.cpu_math.args() if target.cpu_math else []
    if flags != wanted:
        out.append(f"{_where(deployment, c)}: args {flags or 'without --mixed_precision'}, model.yaml "
                   f"targets.{target.name} asks {wanted or 'none'}"
                   + (f" ({target.cpu_math.describe()})" if target.cpu_math else " (a GPU target)"))
    if target.cpu_math is not None:
        env = {e.get("name"): e.get("value") for e in c.get("env") or []}
        for name, key, asked in ((ONEDNN_ENV, "onednn", target.cpu_math.onednn),
                                 (ASSUME_FROZEN_ENV, "frozen_weights", str(target.cpu_math.frozen_weights).lower())):
            value, expected = env.get(name), target.cpu_math.env().get(name)
            if value != expected:
                out.append(f"{_where(deployment, c)}: {name} is {value if value is not None else 'unset'}, "
                           f"model.yaml targets.{target.name} {key}: {asked} means "
                           f"{expected if expected is not None else 'unset'}")
    return out


@policy("layout")
def layout(overlay: Overlay) -> list[str]:
    """channels_first reaches only GPU targets: the stock CPU image cannot run NCHW convolutions."""
    out: list[str] = []
    target, deployment = overlay.target, overlay.serving_deployment()
    if target is None:
        return [f"overlay {overlay.name}: model.yaml has no target {overlay.name!r}"]
    if not target.is_gpu and "channels_first" in json.dumps(overlay.objects):
        where = [_where(o) for o in overlay.objects if "channels_first" in json.dumps(o)]
        out.append(f"{', '.join(where)}: channels_first in the {overlay.name} overlay, which has no GPU")
    if deployment is not None:
        init = container(deployment["spec"]["template"]["spec"], names.FETCH_CONTAINER, init=True) or {}
        env = env_of(overlay, init)
        if env.get("MODEL_LAYOUT") != target.layout:
            out.append(f"{_where(deployment, init)}: MODEL_LAYOUT is {env.get('MODEL_LAYOUT')}, model.yaml "
                       f"targets.{target.name}.layout says {target.layout}")
        if f"/{target.layout}/" not in env.get("MODEL_SOURCE", ""):
            out.append(f"{_where(deployment, init)}: MODEL_SOURCE {env.get('MODEL_SOURCE')} is not a "
                       f"{target.layout} path")
    return out


@policy("images")
def images(overlay: Overlay) -> list[str]:
    """Every image pinned by tag (never latest) or digest; TF Serving's exactly as model.yaml says."""
    out: list[str] = []
    for obj, _, spec in pod_templates(overlay.objects):
        for c in all_containers(spec):
            ref = str(c.get("image", ""))
            _, tag, digest = split_image(ref)
            if tag == "latest":
                out.append(f"{_where(obj, c)}: image {ref} uses the latest tag, which moves: pin a release tag")
            elif not digest and tag is None:
                out.append(f"{_where(obj, c)}: image {ref or '(none)'} is not pinned (give a release tag or a digest)")
    target, deployment = overlay.target, overlay.serving_deployment()
    if target is not None and deployment is not None:
        c = container(deployment["spec"]["template"]["spec"], names.SERVING_CONTAINER) or {}
        if c.get("image") != target.image.reference:
            out.append(f"{_where(deployment, c)}: image {c.get('image')}, model.yaml targets.{target.name}.image "
                       f"says {target.image.reference}")
    return out


def autoscalers(overlay: Overlay) -> list[tuple[Obj, tuple[str, str], Any, Any]]:
    """(object, (kind, name) it scales, min, max) for every HPA and KEDA ScaledObject of the overlay.
    ScaledObject fields: kedacore/keda config/crd/bases/keda.sh_scaledobjects.yaml (spec.scaleTargetRef,
    minReplicaCount, maxReplicaCount; kind defaults to Deployment)."""
    found = []
    for hpa in overlay.find("HorizontalPodAutoscaler"):
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        found.append((hpa, (str(ref.get("kind")), str(ref.get("name"))), spec.get("minReplicas", 1), spec.get("maxReplicas")))
    for so in overlay.find("ScaledObject"):
        spec = so.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        found.append((so, (str(ref.get("kind", "Deployment")), str(ref.get("name"))), spec.get("minReplicaCount", 0),
                      spec.get("maxReplicaCount", 100)))
    return found


@policy("autoscaling")
def autoscaling(overlay: Overlay) -> list[str]:
    """Exactly one autoscaler (an HPA or a KEDA ScaledObject) owns the replica count, with model.yaml's bounds."""
    out: list[str] = []
    by_workload: dict[tuple[str, str], list[Obj]] = {}
    for scaler, ref, _, _ in autoscalers(overlay):
        by_workload.setdefault(ref, []).append(scaler)
        for obj in overlay.find(*ref):
            if "replicas" in (obj.get("spec") or {}):
                out.append(f"{_where(obj)}: sets replicas while {_where(scaler)} scales it (every sync would reset "
                           "the count)")
    for (kind, name), scalers in sorted(by_workload.items()):
        if len(scalers) > 1:
            # KEDA creates an HPA of its own for a ScaledObject: two autoscalers fight over the count.
            out.append(f"{kind}/{name}: scaled by {' and '.join(_where(s) for s in scalers)}; exactly one may own "
                       "its replica count")
    deployment, target = overlay.serving_deployment(), overlay.target
    # Issue 14: a canary target's Rollout owns the Deployment's pods (workloadRef), so the autoscaler must scale the
    # Rollout; one that scales the Deployment would be undone by the Rollouts controller (tools/rollout/checks.py).
    workload = _serving_workload(overlay)
    if deployment is not None and workload not in by_workload:
        out.append(f"{_where(deployment)}: no HorizontalPodAutoscaler or ScaledObject scales it"
                   + (f" (through {workload[0]}/{workload[1]}, which owns its pods)" if workload[0] != "Deployment" else ""))
    if target is not None:
        a = target.autoscaling
        for scaler, ref, low, high in autoscalers(overlay):
            if ref == workload and (low, high) != (a.min_replicas, a.max_replicas):
                out.append(f"{_where(scaler)}: replicas {low}..{high}, model.yaml "
                           f"targets.{target.name}.autoscaling says {a.min_replicas}..{a.max_replicas}")
        obs = overlay.config.observability
        want = "ScaledObject" if obs is not None and obs.scaled_object(target) else "HorizontalPodAutoscaler"
        kinds = {s.get("kind") for s in by_workload.get(workload, [])}
        if kinds and kinds != {want}:
            out.append(f"{workload[0]}/{workload[1]}: model.yaml targets.{target.name}.autoscaling.metric "
                       f"{a.metric} (observability.keda {obs.keda if obs else False}) wants a {want}, got "
                       f"{', '.join(sorted(kinds))}")
    return out


def _serving_workload(overlay: Overlay) -> tuple[str, str]:
    """What owns the serving pods: the Rollout that references the Deployment (issue 14), else the Deployment."""
    for rollout in overlay.find("Rollout", names.ROLLOUT):
        ref = (rollout.get("spec") or {}).get("workloadRef") or {}
        if ref.get("kind") == "Deployment" and ref.get("name") == names.DEPLOYMENT:
            return ("Rollout", names.ROLLOUT)
    return ("Deployment", names.DEPLOYMENT)


def _selects(selector: Obj, labels: Obj) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items()) and not selector.get("matchExpressions")


@policy("disruption")
def disruption(overlay: Overlay) -> list[str]:
    """A PodDisruptionBudget covers TF Serving and still lets a node drain (even at the minimum replica count)."""
    out: list[str] = []
    deployment = overlay.serving_deployment()
    if deployment is None:
        return out
    pod_labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    scalers = [low for _, ref, low, _ in autoscalers(overlay) if ref == ("Deployment", names.DEPLOYMENT)]
    min_replicas = scalers[0] if scalers else 1
    pdbs = [p for p in overlay.find("PodDisruptionBudget") if _selects((p.get("spec") or {}).get("selector") or {},
                                                                         pod_labels)]
    if not pdbs:
        out.append(f"{_where(deployment)}: no PodDisruptionBudget selects its pods")
    for pdb in pdbs:
        spec = pdb.get("spec") or {}
        if "maxUnavailable" in spec:
            value = spec["maxUnavailable"]
            if value in (0, "0", "0%"):
                out.append(f"{_where(pdb)}: maxUnavailable {value} blocks every node drain")
        elif "minAvailable" in spec:
            value = spec["minAvailable"]
            # Kubernetes rounds a percentage of minAvailable up.
            allowed = (isinstance(value, int) and value < min_replicas) or (
                isinstance(value, str) and value.endswith("%")
                and math.ceil(int(value[:-1]) * min_replicas / 100) < min_replicas)
            if not allowed:
                out.append(f"{_where(pdb)}: minAvailable {value} with minReplicas {min_replicas} blocks node drains")
        else:
            out.append(f"{_where(pdb)}: sets neither maxUnavailable nor minAvailable")
    return out


@policy("rollout")
def rollout(overlay: Overlay) -> list[str]:
    """Rollouts that keep serving: model.yaml's surge/unavailable, never all pods at once, replicas spread over nodes, a preStop drain within the grace period."""
    out: list[str] = []
    deployment = overlay.serving_deployment()
    if deployment is None:
        return [f"overlay {overlay.name}: no Deployment/{names.DEPLOYMENT}"]
    spec = deployment.get("spec") or {}
    rolling = ((spec.get("strategy") or {}).get("rollingUpdate") or {})
    target = overlay.target
    if (spec.get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        out.append(f"{_where(deployment)}: strategy must be RollingUpdate")
    elif target is not None and target.rollout is not None:
        want = (target.rollout.max_surge, target.rollout.max_unavailable)
        got = (rolling.get("maxSurge"), rolling.get("maxUnavailable"))
        if got != want:
            out.append(f"{_where(deployment)}: maxSurge/maxUnavailable {got[0]}/{got[1]}, model.yaml "
                       f"targets.{target.name}.rollout says {want[0]}/{want[1]}")
        if isinstance(got[1], int) and got[1] >= target.autoscaling.min_replicas:
            out.append(f"{_where(deployment)}: maxUnavailable {got[1]} can take every pod down at minReplicas "
                       f"{target.autoscaling.min_replicas}")
    pod = spec["template"]["spec"]
    affinity = (pod.get("affinity") or {}).get("podAntiAffinity")
    if not pod.get("topologySpreadConstraints") and not affinity:
        out.append(f"{_where(deployment)}: no topologySpreadConstraints or podAntiAffinity: replicas may share a node")
    for c in pod.get("topologySpreadConstraints") or []:
        # Nodes too small for the pod still count as spread domains, so a hard spread can keep a replica Pending
        # next to a free GPU (docs/deployment.md#rollouts-and-spreading; tests/k8s/test_scheduling.py).
        if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule":
            out.append(f"{_where(deployment)}: topology spread over {c.get('topologyKey')} is DoNotSchedule, which can "
                       "strand a scale-up: use ScheduleAnyway")
    c = container(pod, names.SERVING_CONTAINER) or {}
    pre_stop = ((c.get("lifecycle") or {}).get("preStop") or {})
    if not pre_stop:
        out.append(f"{_where(deployment, c)}: no preStop hook: requests routed during endpoint removal would fail")
    command = (pre_stop.get("exec") or {}).get("command") or []
    sleep = int(command[-1]) if len(command) >= 2 and str(command[-1]).isdigit() else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if sleep >= grace:
        out.append(f"{_where(deployment)}: terminationGracePeriodSeconds {grace} leaves no time after the {sleep} s "
                   "preStop drain")
    return out


def _serving_pod(overlay: Overlay, deployment: dict) -> tuple[dict, dict, dict | None]:
    """The pod spec, the TF Serving container, and the ConfigMap mounted as its config folder."""
    pod = deployment["spec"]["template"]["spec"]
    c = container(pod, names.SERVING_CONTAINER) or {}
    return pod, c, mounted_configmap(overlay, pod, c, names.CONFIG_MOUNT)


@policy("serving-config")
def serving_config(overlay: Overlay) -> list[str]:
    """TF Serving's config files parse as its protos and match model.yaml; the args point at them."""
    out: list[str] = []
    target, deployment = overlay.target, overlay.serving_deployment()
    if target is None or deployment is None:
        return out
    pod, c, cm = _serving_pod(overlay, deployment)
    if cm is None:
        return [f"{_where(deployment, c)}: no ConfigMap mounted at {names.CONFIG_MOUNT}"]
    data, args = cm.get("data") or {}, c.get("args") or []
    for flag, key in (("--model_config_file", names.MODEL_CONFIG_FILE),
                      ("--batching_parameters_file", names.BATCHING_CONFIG_FILE),
                      ("--monitoring_config_file", "monitoring.config")):
        if f"{flag}={names.CONFIG_MOUNT}/{key}" not in args:
            out.append(f"{_where(deployment, c)}: args lack {flag}={names.CONFIG_MOUNT}/{key}")
        if key not in data:
            out.append(f"{_where(cm)}: no {key}")
    if "--enable_batching=true" not in args:
        out.append(f"{_where(deployment, c)}: args lack --enable_batching=true")
    try:
        batching = tfserving.parse_batching_parameters(data.get(names.BATCHING_CONFIG_FILE, ""))
        b = target.batching
        got = (batching.max_batch_size.value, batching.batch_timeout_micros.value, batching.num_batch_threads.value,
               batching.max_enqueued_batches.value, tuple(batching.allowed_batch_sizes))
        want = (b.max_batch_size, b.batch_timeout_micros, b.num_batch_threads, b.max_enqueued_batches,
                tuple(b.allowed_batch_sizes))
        if got != want:
            out.append(f"{_where(cm)}: batching.config {got} differs from model.yaml targets.{target.name}.batching "
                       f"{want}")
        monitoring = tfserving.parse_monitoring_config(data.get("monitoring.config", ""))
        annotations = ((deployment["spec"]["template"].get("metadata") or {}).get("annotations") or {})
        if not monitoring.prometheus_config.enable:
            out.append(f"{_where(cm)}: monitoring.config does not enable Prometheus")
        if annotations.get("prometheus.io/path") != monitoring.prometheus_config.path:
            out.append(f"{_where(deployment)}: prometheus.io/path {annotations.get('prometheus.io/path')} is not "
                       f"the metrics path {monitoring.prometheus_config.path}")
        if annotations.get("prometheus.io/scrape") != "true" or \
                annotations.get("prometheus.io/port") != str(names.HTTP_PORT):
            out.append(f"{_where(deployment)}: prometheus.io/scrape and prometheus.io/port must name the REST port")
    except ValueError as exc:
        out.append(f"{_where(cm)}: {exc}")
    return out


@policy("pinned-model")
def pinned_model(overlay: Overlay) -> list[str]:
    """model.yaml's version and digest reach TF Serving's model config, the init step and the pod annotations."""
    out: list[str] = []
    target, deployment = overlay.target, overlay.serving_deployment()
    if target is None or deployment is None:
        return out
    config, model = overlay.config, overlay.config.model
    digest = model.digests.get(target.layout)
    base_path = model_base_path(config)
    pod, c, cm = _serving_pod(overlay, deployment)
    try:
        server = tfserving.parse_model_server_config(((cm or {}).get("data") or {}).get(names.MODEL_CONFIG_FILE, ""))
        models = list(server.model_config_list.config)
        if len(models) != 1:
            out.append(f"models.config serves {len(models)} models, want exactly {model.name}")
        for m in models:
            versions = list(m.model_version_policy.specific.versions)
            if (m.name, m.base_path, versions) != (model.name, base_path, [model.version]):
                out.append(f"models.config serves {m.name} at {m.base_path} versions {versions}; model.yaml pins "
                           f"{model.name} at {base_path} version {model.version} (model_version_policy.specific)")
    except ValueError as exc:
        out.append(str(exc))
    init = container(pod, names.FETCH_CONTAINER, init=True)
    if init is None:
        return out + [f"{_where(deployment)}: no {names.FETCH_CONTAINER} init container"]
    env = env_of(overlay, init)
    want = {
        "MODEL_NAME": model.name,
        "MODEL_VERSION": str(model.version),
        "MODEL_BASE_PATH": base_path,
        "MODEL_SOURCE": fetch_source(config.store.uri, model.name, target.layout, model.version,
                                     config.store.azure_account),
        "MODEL_DIGEST": digest or "",
    }
    for key, value in want.items():
        if env.get(key) != value:
            out.append(f"{_where(deployment, init)}: {key} is {env.get(key)!r}, model.yaml gives {value!r}")
    serving_env = env_of(overlay, c)
    for key in ("MODEL_NAME", "MODEL_VERSION"):
        if serving_env.get(key) != want[key]:
            out.append(f"{_where(deployment, c)}: readiness checks {key}={serving_env.get(key)!r}, want {want[key]!r}")
    annotations = ((deployment["spec"]["template"].get("metadata") or {}).get("annotations") or {})
    for key, value in ((names.ANNOTATION_MODEL_NAME, model.name), (names.ANNOTATION_MODEL_VERSION, str(model.version)),
                       (names.ANNOTATION_MODEL_DIGEST, digest or names.UNPINNED_DIGEST)):
        if annotations.get(key) != value:
            out.append(f"{_where(deployment)}: annotation {key} is {annotations.get(key)!r}, want {value!r}")
    return out

