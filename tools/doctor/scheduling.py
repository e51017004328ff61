"""Would this pod fit this node? kube-scheduler's filter rules, for the built GPU pod against real node objects.

    fits(pod_spec, node) -> []                   # fits
    fits(pod_spec, node) -> ["Insufficient cpu: the pod requests 4, the node has 3860m allocatable", ...]

The filters of the default scheduler profile that decide on a single pod against an empty node, as upstream
implements them (kubernetes/kubernetes pkg/scheduler/framework/plugins/...):
- NodeUnschedulable (nodeunschedulable/node_unschedulable.go): a cordoned node takes no pod unless it
  tolerates the node.kubernetes.io/unschedulable:NoSchedule taint;
- NodeResourcesFit (noderesources/fit.go, computePodResourceRequest): the pod's request per resource, extended
  resources such as nvidia.com/gpu included, is max(sum over containers, each init container) + overhead, and
  must be at most the node's allocatable (minus `used`, what running pods already request); a container's
  request defaults to its limit (pkg/apis/core/v1/defaults.go);
- NodeAffinity (nodeaffinity/node_affinity.go, component-helpers scheduling/corev1/nodeaffinity): every
  nodeSelector label matches, and at least one requiredDuringScheduling nodeSelectorTerm has all its
  expressions true (In, NotIn, Exists, DoesNotExist, Gt, Lt);
- TaintToleration (tainttoleration/taint_toleration.go): every NoSchedule and NoExecute taint of the node is
  tolerated (v1 Toleration.ToleratesTaint: Exists matches any value, an empty key with Exists matches all,
  an empty effect matches every effect).
Not modelled: ports, volumes' zones and limits, inter-pod affinity and topology spread (this pod's spread
is ScheduleAnyway, a score, so it never filters), and other pods unless given as `used`.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Iterable

Obj = dict[str, Any]
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity ("3860m", "27Gi", 1) as a number; ValueError if it is none."""
    m = _QUANTITY.match(str(value).strip())
    if not m or m[2] not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(m[1]) * Decimal(_SUFFIX[m[2]])


def _container_requests(c: Obj) -> dict[str, Decimal]:
    res = c.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    return {k: quantity(v) for k, v in merged.items()}


def pod_requests(spec: Obj) -> dict[str, Decimal]:
    """The pod's effective request per resource (NodeResourcesFit computePodResourceRequest)."""
    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for k, v in _container_requests(c).items():
            total[k] = total.get(k, Decimal(0)) + v
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":  # a sidecar runs beside the containers
            for k, v in _container_requests(c).items():
                total[k] = total.get(k, Decimal(0)) + v
            continue
        for k, v in _container_requests(c).items():
            total[k] = max(total.get(k, Decimal(0)), v)
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, Decimal(0)) + quantity(v)
    return total


def _fmt(value: Decimal) -> str:
    return str(value.normalize()) if value == value.to_integral() else f"{(value * 1000).normalize():f}m"


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """k8s.io/api core/v1 toleration.go ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def _expression_matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def affinity_problems(spec: Obj, labels: dict[str, str]) -> list[str]:
    out = []
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            out.append(f"node(s) didn't match Pod's node affinity/selector: label {key}={value} wanted, "
                       f"node has {key}={labels[key]}" if key in labels else
                       f"node(s) didn't match Pod's node affinity/selector: no label {key} (wanted {value})")
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(all(_expression_matches(e, labels) for e in t.get("matchExpressions") or [])
                         for t in terms):
        wanted = "; or ".join(", ".join(f"{e.get('key')} {e.get('operator')} {e.get('values') or ''}".strip()
                                        for e in t.get("matchExpressions") or []) for t in terms)
        out.append(f"node(s) didn't match Pod's node affinity/selector: required {wanted}")
    return out


def fits(spec: Obj, node: Obj, used: dict[str, Decimal] | None = None) -> list[str]:
    """Why the pod with this spec cannot be scheduled on `node` (a v1 Node as JSON); [] if it can."""
    out: list[str] = []
    node_spec, meta = node.get("spec") or {}, node.get("metadata") or {}
    tolerations = spec.get("tolerations") or []
    if node_spec.get("unschedulable") and not any(
            tolerates(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}) for t in tolerations):
        out.append("node(s) were unschedulable (cordoned)")
    allocatable = {k: quantity(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()}
    used = used or {}
    for resource, want in sorted(pod_requests(spec).items()):
        if want == 0:
            continue
        have = allocatable.get(resource, Decimal(0)) - used.get(resource, Decimal(0))
        if want > have:
            out.append(f"Insufficient {resource}: the pod requests {_fmt(want)}, the node has {_fmt(have)} "
                       f"{'free' if used else 'allocatable'}")
    out += affinity_problems(spec, meta.get("labels") or {})
    for taint in node_spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(tolerates(t, taint) for t in tolerations):
            value = f"={taint['value']}" if taint.get("value") else ""
            out.append(f"node(s) had untolerated taint {{{taint.get('key')}{value}:{taint.get('effect')}}}")
    return out


def pod_spec_of(objects: Iterable[Obj], kind: str = "Deployment", name: str = "tf-serving") -> Obj:
    """The pod template spec of the named object in a kustomize build."""
    for obj in objects:
        if obj.get("kind") == kind and (obj.get("metadata") or {}).get("name") == name:
            return obj["spec"]["template"]["spec"]
    raise KeyError(f"no {kind}/{name} in the build")


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def spread_problems(spec: Obj, pod_labels: dict[str, str], node: Obj, nodes: list[Obj],
                    placed: dict[str, int]) -> list[str]:
    """PodTopologySpread's filter (podtopologyspread/filtering.go) for the DoNotSchedule constraints of `spec`.

    `placed`: node name -> pods already there that the constraint's labelSelector matches. Domains are the
    topologyKey values of the nodes that pass nodeAffinityPolicy (default Honor: the pod's nodeSelector/affinity)
    and nodeTaintsPolicy (default Ignore; Honor: only nodes whose taints the pod tolerates). The pod may go to
    `node` only if its domain's count + 1 - the smallest count over all domains <= maxSkew. Resources play no
    part: a domain the pod cannot fit still holds the minimum down (the stranded scale-up)."""
    out = []
    for c in spec.get("topologySpreadConstraints") or []:
        if c.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        if not _selects(c.get("labelSelector") or {}, pod_labels):
            continue
        key = c["topologyKey"]

        def eligible(n: Obj) -> bool:
            labels = (n.get("metadata") or {}).get("labels") or {}
            if key not in labels:
                return False
            if c.get("nodeAffinityPolicy", "Honor") == "Honor" and affinity_problems(spec, labels):
                return False
            if c.get("nodeTaintsPolicy", "Ignore") == "Honor":
                for taint in (n.get("spec") or {}).get("taints") or []:
                    if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
                            tolerates(t, taint) for t in spec.get("tolerations") or []):
                        return False
            return True

        counts: dict[str, int] = {}
        for n in nodes:
            if eligible(n):
                domain = n["metadata"]["labels"][key]
                counts[domain] = counts.get(domain, 0) + placed.get(n["metadata"]["name"], 0)
        domain = ((node.get("metadata") or {}).get("labels") or {}).get(key)
        if domain is None or domain not in counts:
            continue
        skew = counts[domain] + 1 - min(counts.values())
        if skew > c.get("maxSkew", 1):
            out.append(f"node(s) didn't match pod topology spread constraints ({key}: skew {skew} > maxSkew "
                       f"{c.get('maxSkew', 1)})")
    return out


def schedule_replicas(spec: Obj, pod_labels: dict[str, str], nodes: list[Obj], replicas: int) -> list[str | None]:
    """Place `replicas` copies of the pod one after another, each on the first node every filter admits (the
    scheduler's score phase is not modelled); None for a replica that stays Pending."""
    used: dict[str, dict[str, Decimal]] = {n["metadata"]["name"]: {} for n in nodes}
    placed: dict[str, int] = {}
    requests = pod_requests(spec)
    result: list[str | None] = []
    for _ in range(replicas):
        chosen = None
        for n in nodes:
            name = n["metadata"]["name"]
            if not fits(spec, n, used[name]) and not spread_problems(spec, pod_labels, n, nodes, placed):
                chosen = name
                break
        result.append(chosen)
        if chosen:
            placed[chosen] = placed.get(chosen, 0) + 1
            for k, v in requests.items():
                used[chosen][k] = used[chosen].get(k, Decimal(0)) + v
    return result
