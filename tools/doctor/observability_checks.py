"""`make doctor`'s checks for what the observability objects of the target's overlay need (issue 15).

Each check looks at the built overlay first and returns None when the overlay has nothing it is about, so a
model.yaml with observability off, or a target on the CPU HPA, runs none of them:

    prometheus operator   PodMonitor/ServiceMonitor/PrometheusRule in the overlay: their CRDs serve that version
    prometheus selection  ... and some Prometheus object selects them (label and namespace selectors)
    keda                  a ScaledObject: its CRD serves that version, the keda-operator Deployment is Available
    keda metrics api      ... and KEDA's metrics server answers as APIService v1beta1.external.metrics.k8s.io
    autoscalers           ... and no other HorizontalPodAutoscaler scales the same workload
    dcgm exporter         alerts or dashboard use DCGM_* series: a DCGM exporter runs ready on the GPU nodes
                          (a warning: those alerts and panels are extras, serving and scaling work without them)

Upstream facts used:
- CRD names are <plural>.<group> (kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-
  definitions); a version is usable when spec.versions[].served is true. Plurals and groups as in the vendored
  CRDs (tools/observability/crds/*.yaml: podmonitors and prometheusrules.monitoring.coreos.com from
  prometheus-operator/prometheus-operator example/prometheus-operator-crd/, scaledobjects.keda.sh from
  kedacore/keda config/crd/bases/); servicemonitors.monitoring.coreos.com from the same prometheus-operator folder.
- Prometheus selection (prometheus-operator pkg/apis/monitoring/v1/prometheus_types.go): serviceMonitorSelector,
  podMonitorSelector, ruleSelector: "An empty label selector matches all objects. A null label selector matches
  no objects."; their *NamespaceSelector: "An empty label selector matches all namespaces. A null label selector
  matches the current namespace only" (the Prometheus object's own). Prometheus objects are
  monitoring.coreos.com/v1 prometheuses. Label selectors as k8s.io/apimachinery pkg/labels/selector.go
  (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist); every namespace carries
  kubernetes.io/metadata.name=<name> (kubernetes.io/docs/reference/labels-annotations-taints).
- KEDA: the operator Deployment is labelled app.kubernetes.io/name=keda-operator both in kedacore/keda
  config/manager/manager.yaml and in the Helm chart (kedacore/charts keda/templates/manager/deployment.yaml,
  operator.name default keda-operator); its metrics server registers APIService v1beta1.external.metrics.k8s.io
  (kedacore/keda config/metrics-server/api_service.yaml; Service keda-metrics-apiserver there,
  <operator.name>-metrics-apiserver in the chart), which the HPA KEDA creates reads. KEDA names that HPA
  spec.advanced.horizontalPodAutoscalerConfig.name, else keda-hpa-<ScaledObject name> (kedacore/keda
  controllers/keda/hpa.go getHPAName). A Deployment is up when its Available condition is True
  (kubernetes.io/docs/concepts/workloads/controllers/deployment, "Deployment status").
- DCGM exporter: the GPU Operator's DaemonSet nvidia-dcgm-exporter, label app=nvidia-dcgm-exporter (NVIDIA/
  gpu-operator assets/state-dcgm-exporter/0800_daemonset.yaml); the standalone chart's
  app.kubernetes.io/name=dcgm-exporter (NVIDIA/dcgm-exporter deployment/templates/_helpers.tpl selectorLabels,
  chart name dcgm-exporter in deployment/Chart.yaml), installed from https://nvidia.github.io/dcgm-exporter/
  helm-charts (NVIDIA/dcgm-exporter README). The DCGM metric names the alerts use: tools/observability/metrics.py.
- Install commands in the fixes: kube-prometheus-stack from the prometheus-community repository
  (prometheus-community/helm-charts charts/kube-prometheus-stack/README.md); KEDA's chart kedacore/keda into
  namespace keda (keda.sh/docs/deploy, "Deploying with Helm").
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable, Iterable

from tools.doctor.cluster import Cluster
from tools.doctor.findings import Finding
from tools.doctor.scheduling import fits, quantity
from tools.render import names

Obj = dict[str, Any]

MONITORING_GROUP = "monitoring.coreos.com"
# kind -> (CRD, the Prometheus field selecting it, the Prometheus field selecting its namespace)
OPERATOR_KINDS = {
    "PodMonitor": ("podmonitors.monitoring.coreos.com", "podMonitorSelector", "podMonitorNamespaceSelector"),
    "ServiceMonitor": ("servicemonitors.monitoring.coreos.com", "serviceMonitorSelector",
                       "serviceMonitorNamespaceSelector"),
    "PrometheusRule": ("prometheusrules.monitoring.coreos.com", "ruleSelector", "ruleNamespaceSelector"),
}
SCALED_OBJECT_CRD = "scaledobjects.keda.sh"
KEDA_OPERATOR_SELECTOR = "app.kubernetes.io/name=keda-operator"
EXTERNAL_METRICS_API_SERVICE = "v1beta1.external.metrics.k8s.io"
DCGM_EXPORTER_LABELS = (("app", "nvidia-dcgm-exporter"), ("app.kubernetes.io/name", "dcgm-exporter"))
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Every DCGM field the exporter exports starts with it (tools/observability/metrics.py DCGM_*).
DCGM_PREFIX = "DCGM_"

INSTALL_OPERATOR = ("install the Prometheus Operator with its CRDs (e.g. helm install kube-prometheus-stack "
                    "prometheus-community/kube-prometheus-stack -n monitoring --create-namespace), or set "
                    "observability.pod_monitor/alerts to false in model.yaml and make render")
UPGRADE_OPERATOR = ("upgrade the Prometheus Operator's CRDs to a release that serves them (make check validates "
                    "against operator 0.93.0's, tools/observability/crds/)")
INSTALL_KEDA = ("install KEDA (helm install keda kedacore/keda -n keda --create-namespace; keda.sh/docs/deploy), "
                "or set observability.keda: false in model.yaml (the target falls back to the CPU HPA) and make render")
INSTALL_DCGM = ("run NVIDIA's DCGM exporter on the GPU nodes: the GPU Operator's dcgmExporter, or helm install "
                "dcgm-exporter gpu-helm-charts/dcgm-exporter (repo https://nvidia.github.io/dcgm-exporter/"
                "helm-charts), scraped by your Prometheus")


# --- the overlay's objects --------------------------------------------------------------------------------------

def _name(obj: Obj) -> str:
    return obj["metadata"]["name"]


def _labels(obj: Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def _group_version(obj: Obj) -> tuple[str, str]:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return group, version


def _of_kinds(objects: Iterable[Obj], group: str, kinds: Iterable[str]) -> list[Obj]:
    return [o for o in objects if o.get("kind") in kinds and _group_version(o)[0] == group]


def _describe(objs: Iterable[Obj]) -> str:
    return ", ".join(f"{o['kind']} {_name(o)}" for o in objs)


def _dcgm_users(objects: list[Obj]) -> list[str]:
    """What in the overlay reads DCGM series: the alerts by name, the dashboard ConfigMaps by name."""
    alerts = [r.get("alert") or r.get("record") for o in objects if o.get("kind") == "PrometheusRule"
              for g in (o.get("spec") or {}).get("groups") or [] for r in g.get("rules") or []
              if DCGM_PREFIX in str(r.get("expr", ""))]
    dashboards = [_name(o) for o in objects if o.get("kind") == "ConfigMap"
                  and DCGM_PREFIX in json.dumps(o.get("data") or {})]
    return ([f"alerts {', '.join(alerts)}"] if alerts else []) + \
           ([f"the GPU panels of dashboard {', '.join(dashboards)}"] if dashboards else [])


# --- cluster facts ----------------------------------------------------------------------------------------------

def _crd_problem(cluster: Cluster, crd: str, version: str) -> str | None:
    """None if the CRD exists and serves `version`, else what is wrong."""
    found = cluster.crd(crd)
    if found is None:
        return f"CustomResourceDefinition {crd} not found"
    served = [v["name"] for v in (found.get("spec") or {}).get("versions") or [] if v.get("served")]
    if version not in served:
        return f"CustomResourceDefinition {crd} serves {', '.join(served) or 'no version'}, not {version}"
    return None


def _condition(obj: Obj, kind: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def _why_not(condition: Obj) -> str:
    text = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
    return f" ({text})" if text else " (no status)"


def matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector against labels (k8s.io/apimachinery pkg/labels/selector.go); {} matches all."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_text(selector: Obj) -> str:
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    parts += [f"{e.get('key')} {e.get('operator')} {e.get('values') or ''}".strip()
              for e in selector.get("matchExpressions") or []]
    return "{" + ", ".join(parts) + "}"


def _namespace_labels(cluster: Cluster, namespace: str, objects: list[Obj]) -> dict[str, str]:
    """The live namespace's labels, or before the first sync those the overlay's Namespace object will get."""
    live = cluster.namespace(namespace)
    if live is not None:
        return _labels(live)
    rendered = next((o for o in objects if o.get("kind") == "Namespace" and _name(o) == namespace), None)
    return {**(_labels(rendered) if rendered else {}), NAMESPACE_NAME_LABEL: namespace}


def _rejection(prometheus: Obj, obj: Obj, namespace: str, ns_labels: dict[str, str]) -> tuple[str, str] | None:
    """None if this Prometheus selects obj, else (why not, what to change)."""
    _, field, ns_field = OPERATOR_KINDS[obj["kind"]]
    spec = prometheus.get("spec") or {}
    where = f"{prometheus['metadata'].get('namespace')}/{_name(prometheus)}"
    selector = spec.get(field)
    if selector is None:
        return (f"{where}'s {field} is null (selects no {obj['kind']})",
                f"set {where}'s {field} to {{}} or to labels of the {obj['kind']}")
    if not matches(selector, _labels(obj)):
        missing = {k: v for k, v in (selector.get("matchLabels") or {}).items() if _labels(obj).get(k) != v}
        fix = (f"add label{'s' if len(missing) > 1 else ''} {', '.join(f'{k}: {v}' for k, v in missing.items())} "
               f"to observability.selector_labels in model.yaml (what {where}'s {field} matches), then make render"
               if missing else
               f"make observability.selector_labels in model.yaml match {where}'s {field}, then make render")
        return f"{where}'s {field} {_selector_text(selector)} does not match its labels", fix
    ns_selector = spec.get(ns_field)
    if ns_selector is None:
        if prometheus["metadata"].get("namespace") != namespace:
            return (f"{where}'s {ns_field} is null (its own namespace only)",
                    f"set {where}'s {ns_field} to {{}} (all namespaces) or to labels of namespace {namespace}")
    elif not matches(ns_selector, ns_labels):
        missing = {k: v for k, v in (ns_selector.get("matchLabels") or {}).items() if ns_labels.get(k) != v}
        fix = (f"kubectl label namespace {namespace} {' '.join(f'{k}={v}' for k, v in missing.items())}" if missing
               else f"label namespace {namespace} to match {where}'s {ns_field}")
        return f"{where}'s {ns_field} {_selector_text(ns_selector)} does not match namespace {namespace}", fix
    return None


def _gpus(node: Obj) -> Decimal:
    return quantity(((node.get("status") or {}).get("allocatable") or {}).get(names.GPU_RESOURCE, "0"))


def _ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and _condition(pod, "Ready").get("status") == "True"


# --- the checks -------------------------------------------------------------------------------------------------

def check_prometheus_operator(cluster: Cluster, objects: list[Obj] = (), **_) -> Finding | None:
    used = _of_kinds(objects, MONITORING_GROUP, OPERATOR_KINDS)
    if not used:
        return None
    needed = sorted({(OPERATOR_KINDS[o["kind"]][0], _group_version(o)[1]) for o in used})
    problems = [p for crd, version in needed if (p := _crd_problem(cluster, crd, version))]
    if problems:
        upgrade = all("not found" not in p for p in problems)
        return Finding("prometheus operator", False, f"{'; '.join(problems)}: the sync fails on {_describe(used)}",
                       UPGRADE_OPERATOR if upgrade else INSTALL_OPERATOR)
    versions = sorted({v for _, v in needed})
    return Finding("prometheus operator", True, f"CRDs {', '.join(c for c, _ in needed)} serve "
                   f"{MONITORING_GROUP}/{'/'.join(versions)}")


def check_prometheus_selection(cluster: Cluster, config, objects: list[Obj] = (), **_) -> Finding | None:
    used = _of_kinds(objects, MONITORING_GROUP, OPERATOR_KINDS)
    if not used:
        return None
    prometheuses = cluster.custom_objects(MONITORING_GROUP, "v1", "prometheuses")
    if not prometheuses:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(_labels(used[0]).items()))
        return Finding("prometheus selection", False, f"no Prometheus object ({MONITORING_GROUP}/v1) in any "
                       f"namespace: nothing scrapes or loads {_describe(used)}",
                       f"create a Prometheus (kube-prometheus-stack does) whose selectors match {labels}")
    selected, rejected, ns_labels_of = [], [], {}
    for obj in used:
        namespace = obj["metadata"].get("namespace") or config.deploy.namespace
        if namespace not in ns_labels_of:
            ns_labels_of[namespace] = _namespace_labels(cluster, namespace, objects)
        ns_labels = ns_labels_of[namespace]
        verdicts = {f"{p['metadata'].get('namespace')}/{_name(p)}": _rejection(p, obj, namespace, ns_labels)
                    for p in prometheuses}
        by = sorted(name for name, why in verdicts.items() if why is None)
        if by:
            selected.append(f"{obj['kind']} {_name(obj)} selected by {', '.join(by)}")
        else:
            rejected.append((obj, sorted(verdicts.values())))
    if rejected:
        why = "; ".join(f"{o['kind']} {_name(o)}: {', '.join(w for w, _ in reasons)}" for o, reasons in rejected)
        fixes = list(dict.fromkeys(fix for _, reasons in rejected for _, fix in reasons))
        return Finding("prometheus selection", False, f"no Prometheus selects {why}: the operator silently "
                       "ignores what no Prometheus selects", "; or ".join(fixes))
    return Finding("prometheus selection", True, "; ".join(selected))


def _scaled_objects(objects: Iterable[Obj]) -> list[Obj]:
    return _of_kinds(objects, "keda.sh", ("ScaledObject",))


def check_keda(cluster: Cluster, objects: list[Obj] = (), **_) -> Finding | None:
    scaled = _scaled_objects(objects)
    if not scaled:
        return None
    version = _group_version(scaled[0])[1]
    problem = _crd_problem(cluster, SCALED_OBJECT_CRD, version)
    if problem and "not found" in problem:
        return Finding("keda", False, f"{problem}: KEDA is not installed and the sync fails on {_describe(scaled)}",
                       INSTALL_KEDA)
    if problem:
        return Finding("keda", False, f"{problem}: the sync fails on {_describe(scaled)}",
                       "upgrade KEDA to a release that serves it (make check validates against KEDA 2.20's CRD, "
                       "tools/observability/crds/)")
    operators = cluster.deployments_everywhere(KEDA_OPERATOR_SELECTOR)
    if not operators:
        return Finding("keda", False, f"CRD {SCALED_OBJECT_CRD} is installed but no Deployment labelled "
                       f"{KEDA_OPERATOR_SELECTOR} runs in any namespace: nothing acts on {_describe(scaled)}",
                       INSTALL_KEDA)
    where = lambda d: f"{d['metadata'].get('namespace')}/{_name(d)}"  # noqa: E731
    down = [d for d in operators if _condition(d, "Available").get("status") != "True"]
    if len(down) == len(operators):
        return Finding("keda", False, "; ".join(f"Deployment {where(d)} not Available"
                                                f"{_why_not(_condition(d, 'Available'))}" for d in down),
                       f"kubectl -n {down[0]['metadata'].get('namespace')} describe deployment {_name(down[0])}; "
                       f"kubectl -n {down[0]['metadata'].get('namespace')} logs deployment/{_name(down[0])}")
    up = next(d for d in operators if d not in down)
    images = [c.get("image", "") for c in up["spec"]["template"]["spec"].get("containers") or []]
    return Finding("keda", True, f"CRD {SCALED_OBJECT_CRD} serves {version}; Deployment {where(up)} Available"
                   + (f" ({images[0]})" if images else ""))


def check_keda_metrics_api(cluster: Cluster, objects: list[Obj] = (), **_) -> Finding | None:
    if not _scaled_objects(objects):
        return None
    name = EXTERNAL_METRICS_API_SERVICE
    fix = "reinstall KEDA with its metrics server (the chart's keda-operator-metrics-apiserver)"
    service = cluster.api_service(name)
    if service is None:
        return Finding("keda metrics api", False, f"APIService {name} not found: the HPA KEDA creates cannot read "
                       "the trigger's metric", fix)
    backend = (service.get("spec") or {}).get("service") or {}
    where = f"{backend.get('namespace')}/{backend.get('name')}"
    if "keda" not in str(backend.get("name", "")):
        return Finding("keda metrics api", False, f"APIService {name} is served by Service {where}, not KEDA's "
                       "metrics server: only one adapter can serve external metrics",
                       f"remove the other adapter's APIService {name}, then {fix}")
    available = _condition(service, "Available")
    if available.get("status") != "True":
        return Finding("keda metrics api", False, f"APIService {name} (Service {where}) not Available"
                       f"{_why_not(available)}", f"kubectl -n {backend.get('namespace')} describe service "
                       f"{backend.get('name')} (its pods must be Ready); {fix}")
    return Finding("keda metrics api", True, f"APIService {name} Available (Service {where})")


def _keda_hpa_name(scaled: Obj) -> str:
    config = ((scaled.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    return config.get("name") or f"keda-hpa-{_name(scaled)}"


def check_autoscalers(cluster: Cluster, config, objects: list[Obj] = (), **_) -> Finding | None:
    scaled = _scaled_objects(objects)
    if not scaled:
        return None
    so = scaled[0]
    namespace = so["metadata"].get("namespace") or config.deploy.namespace
    ref = so["spec"]["scaleTargetRef"]
    target = (ref.get("kind", "Deployment"), ref["name"])
    keda_hpa = _keda_hpa_name(so)
    others = sorted(_name(h) for h in cluster.horizontal_pod_autoscalers(namespace)
                    if (h["spec"]["scaleTargetRef"].get("kind"), h["spec"]["scaleTargetRef"]["name"]) == target
                    and _name(h) != keda_hpa)
    if others:
        return Finding("autoscalers", False, f"HorizontalPodAutoscaler {', '.join(others)} in {namespace} also "
                       f"scales {target[0]} {target[1]}: it and KEDA's {keda_hpa} would fight over the replicas",
                       f"kubectl -n {namespace} delete hpa {' '.join(others)} (a leftover of the CPU overlay: "
                       "let Argo CD prune it)")
    return Finding("autoscalers", True, f"no HorizontalPodAutoscaler besides KEDA's {keda_hpa} scales "
                   f"{target[0]} {target[1]} in {namespace}")


def check_dcgm_exporter(cluster: Cluster, objects: list[Obj] = (), gpu_pod: Obj | None = None, **_) -> Finding | None:
    users = _dcgm_users(objects)
    if not users:
        return None
    consequence = f"{' and '.join(users)} get no series (alerts never fire)"
    gpu_nodes = [n for n in cluster.nodes() if _gpus(n) > 0]
    serving = [n for n in gpu_nodes if gpu_pod is None or not fits(gpu_pod, n)] or gpu_nodes
    exporters = [d for d in cluster.daemonsets_everywhere()
                 if any(_labels(d).get(k) == v for k, v in DCGM_EXPORTER_LABELS)]
    label_text = " or ".join(f"{k}={v}" for k, v in DCGM_EXPORTER_LABELS)
    if not exporters:
        return Finding("dcgm exporter", False, f"no DCGM exporter DaemonSet ({label_text}) in any namespace: "
                       f"{consequence}", INSTALL_DCGM, warning=True)
    if not serving:
        return Finding("dcgm exporter", False, f"DCGM exporter installed, but no node has allocatable "
                       f"{names.GPU_RESOURCE}: {consequence}", "see the gpu nodes check", warning=True)
    covered: set[str] = set()
    for d in exporters:
        selector = ",".join(f"{k}={v}" for k, v in sorted(((d["spec"].get("selector") or {}).get("matchLabels")
                                                             or {}).items()))
        covered |= {p["spec"].get("nodeName") for p in cluster.pods(d["metadata"]["namespace"], selector) if _ready(p)}
    where = ", ".join(f"{d['metadata']['namespace']}/{_name(d)}" for d in exporters)
    missing = sorted(n["metadata"]["name"] for n in serving if n["metadata"]["name"] not in covered)
    if missing:
        return Finding("dcgm exporter", False, f"DaemonSet {where} has no ready pod on {len(missing)} of "
                       f"{len(serving)} GPU nodes ({', '.join(missing)}): there {consequence}",
                       f"kubectl -n {exporters[0]['metadata']['namespace']} describe daemonset {_name(exporters[0])} "
                       "(its nodeSelector and tolerations must admit those nodes)", warning=True)
    return Finding("dcgm exporter", True, f"DaemonSet {where} ready on {len(serving)} of {len(serving)} GPU nodes "
                   f"({', '.join(sorted(n['metadata']['name'] for n in serving))})")


CHECKS: dict[str, Callable[..., Finding | None]] = {
    "prometheus operator": check_prometheus_operator,
    "prometheus selection": check_prometheus_selection,
    "keda": check_keda,
    "keda metrics api": check_keda_metrics_api,
    "autoscalers": check_autoscalers,
    "dcgm exporter": check_dcgm_exporter,
}
