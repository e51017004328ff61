"""Checks of the rendered Argo CD objects (k8s/argocd/): schema of the fields used, and the settings they promise.

    from tools import argocd
    problems = argocd.check(repo_root)          # [] when every object and setting is right

`make check` runs this (registered with tools.check); tests/gitops/test_argocd.py runs it and its parts.
Settings checked, each because a wrong value fails quietly in a cluster rather than loudly here:
- the AppProject allows this repository only, this namespace only, and exactly the kinds the built overlays
  deploy (namespaced and cluster-scoped), so Argo CD neither refuses a sync nor allows more than needed;
- every Application (plain, and the ApplicationSet's template) syncs automatically with prune and selfHeal,
  allowEmpty false, CreateNamespace and PruneLast, a bounded retry with backoff, and the resources-finalizer;
- the ApplicationSet never deletes Applications (applicationsSync), has the finalizer that keeps them when
  it is deleted, and its cluster selectors give every cluster at most one overlay: the gpu label the
  accelerator target, every other cluster the CPU target.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from tools import paths
from tools.argocd.schema import API_VERSION, RESOURCES_FINALIZER, SCHEMAS
from tools.config import Config, load_config

MAX_RETRIES = 10  # "bounded": a sync that failed this often needs a human, not another attempt
REQUIRED_SYNC_OPTIONS = ("CreateNamespace=true", "PruneLast=true")
NON_DELETING_POLICIES = ("create-only", "create-update")


def load_objects(repo_root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(relpath, object) for every YAML document under k8s/argocd/ except kustomization.yaml."""
    root = Path(repo_root) / paths.ARGOCD_DIR
    found = []
    for path in sorted(root.rglob("*.yaml")):
        if path.name == paths.KUSTOMIZATION_FILE:
            continue
        rel = path.relative_to(repo_root).as_posix()
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((rel, doc))
    return found


def schema_problems(obj: Any) -> list[str]:
    """Every way `obj` departs from the schema of its kind, as "<kind>/<name>: <path>: <message>"."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in SCHEMAS or obj.get("apiVersion") != API_VERSION:
        return [f"{kind or 'an object'}: not an {API_VERSION} {', '.join(SCHEMAS)}"]
    name = (obj.get("metadata") or {}).get("name", "?")
    validator = jsonschema.Draft202012Validator(SCHEMAS[kind])
    problems = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"{kind}/{name}: {where}: {error.message}")
    return problems


def application_problems(label: str, meta: dict, spec: dict, config: Config, project: str) -> list[str]:
    """Settings every Application of this repository must have; `label` names it in messages."""
    problems = []
    sync = spec.get("syncPolicy") or {}
    automated = sync.get("automated") or {}
    for key, want in (("prune", True), ("selfHeal", True), ("allowEmpty", False)):
        if automated.get(key, False) is not want:
            problems.append(f"{label}: syncPolicy.automated.{key} must be {str(want).lower()}")
    if automated.get("enabled") is False:
        problems.append(f"{label}: syncPolicy.automated.enabled must not be false")
    for option in REQUIRED_SYNC_OPTIONS:
        if option not in (sync.get("syncOptions") or []):
            problems.append(f"{label}: syncPolicy.syncOptions must include {option}")
    retry = sync.get("retry") or {}
    if not isinstance(retry.get("limit"), int) or not 1 <= retry["limit"] <= MAX_RETRIES:
        problems.append(f"{label}: syncPolicy.retry.limit must be 1..{MAX_RETRIES} (bounded), got {retry.get('limit')}")
    backoff = retry.get("backoff") or {}
    if not (backoff.get("duration") and backoff.get("maxDuration") and (backoff.get("factor") or 0) >= 2):
        problems.append(f"{label}: syncPolicy.retry.backoff needs duration, maxDuration and a factor >= 2")
    if RESOURCES_FINALIZER not in (meta.get("finalizers") or []):
        problems.append(f"{label}: metadata.finalizers must include {RESOURCES_FINALIZER}")
    if spec.get("project") != project:
        problems.append(f"{label}: spec.project must be {project!r}, got {spec.get('project')!r}")
    source, destination = spec.get("source") or {}, spec.get("destination") or {}
    if source.get("repoURL") != config.deploy.repo_url:
        problems.append(f"{label}: spec.source.repoURL must be deploy.repo_url {config.deploy.repo_url!r}")
    if source.get("targetRevision") != config.deploy.revision:
        problems.append(f"{label}: spec.source.targetRevision must be deploy.revision {config.deploy.revision!r}")
    if destination.get("namespace") != config.deploy.namespace:
        problems.append(f"{label}: spec.destination.namespace must be deploy.namespace {config.deploy.namespace!r}")
    return problems


def selector_matches(selector: dict, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (NotIn and DoesNotExist also match a missing label)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if (op == "In" and not (present and labels[key] in values)) or \
                (op == "NotIn" and present and labels[key] in values) or \
                (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def applicationset_problems(appset: dict, config: Config, project: str) -> list[str]:
    label = f"ApplicationSet/{appset['metadata']['name']}"
    spec = appset["spec"]
    problems = []
    if (spec.get("syncPolicy") or {}).get("applicationsSync") not in NON_DELETING_POLICIES:
        problems.append(f"{label}: spec.syncPolicy.applicationsSync must be one of {', '.join(NON_DELETING_POLICIES)} "
                        "(the controller must never delete an Application)")
    if RESOURCES_FINALIZER not in (appset["metadata"].get("finalizers") or []):
        problems.append(f"{label}: metadata.finalizers must include {RESOURCES_FINALIZER} (keeps the Applications "
                        "when the ApplicationSet is deleted)")
    if spec.get("goTemplate") is not True or "missingkey=error" not in (spec.get("goTemplateOptions") or []):
        problems.append(f"{label}: goTemplate with missingkey=error is required (a typo must fail, not render '')")
    template = spec["template"]
    problems += application_problems(f"{label} template", template["metadata"], template["spec"], config, project)
    path = template["spec"]["source"].get("path", "")
    generators = [g["clusters"] for g in spec["generators"]]
    targets = [(g.get("values") or {}).get("target") for g in generators]
    if sorted(t for t in targets if t) != sorted(config.targets) or len(targets) != len(config.targets):
        problems.append(f"{label}: one cluster generator per target with values.target expected "
                        f"({', '.join(config.targets)}), got {targets}")
        return problems
    if path != f"{paths.OVERLAYS_DIR}/{{{{ .values.target }}}}":
        problems.append(f"{label}: template source.path must be {paths.OVERLAYS_DIR}/{{{{ .values.target }}}}, "
                        f"got {path!r}")
    key, value = config.deploy.gpu_cluster_label
    gpu = [t.name for t in config.targets.values() if t.is_gpu]
    cpu = [t.name for t in config.targets.values() if not t.is_gpu]
    for cluster_labels, want in (({key: value}, gpu), ({}, cpu), ({key: f"not-{value}"}, cpu)):
        got = [t for t, g in zip(targets, generators) if selector_matches(g.get("selector") or {}, cluster_labels)]
        if len(got) > 1 or (want and got != want[:1]) or (not want and got):
            problems.append(f"{label}: a cluster labelled {cluster_labels or 'with no labels'} gets "
                            f"{' and '.join(got) or 'no overlay'}; expected {want[0] if want else 'none'} "
                            "(each cluster exactly one overlay: one target per kind of accelerator)")
    return problems


def appproject_problems(project: dict, config: Config, overlay_kinds: dict[str, set[tuple[str, str]]]) -> list[str]:
    """`overlay_kinds`: target -> {(group, kind)} of its built overlay; "__cluster__" maps cluster-scoped kinds."""
    label = f"AppProject/{project['metadata']['name']}"
    spec = project["spec"]
    problems = []
    if spec.get("sourceRepos") != [config.deploy.repo_url]:
        problems.append(f"{label}: spec.sourceRepos must be exactly [{config.deploy.repo_url}], "
                        f"got {spec.get('sourceRepos')}")
    namespaces = {d.get("namespace") for d in spec.get("destinations") or []}
    if namespaces != {config.deploy.namespace}:
        problems.append(f"{label}: spec.destinations must allow only namespace {config.deploy.namespace}, "
                        f"got {sorted(namespaces)}")
    cluster_allowed = {(e["group"], e["kind"]) for e in spec.get("clusterResourceWhitelist") or []}
    namespaced_allowed = {(e["group"], e["kind"]) for e in spec.get("namespaceResourceWhitelist") or []}
    cluster_needed = overlay_kinds.get("__cluster__", set())
    namespaced_needed = set().union(*(v for k, v in overlay_kinds.items() if k != "__cluster__"))
    for what, allowed, needed in (("namespaceResourceWhitelist", namespaced_allowed, namespaced_needed),
                                  ("clusterResourceWhitelist", cluster_allowed, cluster_needed)):
        if allowed != needed:
            missing = ", ".join(f"{g or 'core'}/{k}" for g, k in sorted(needed - allowed))
            extra = ", ".join(f"{g or 'core'}/{k}" for g, k in sorted(allowed - needed))
            problems.append(f"{label}: spec.{what} must list exactly the kinds the overlays deploy"
                            f"{'; missing ' + missing if missing else ''}{'; not deployed ' + extra if extra else ''}")
    for entry in spec.get("clusterResourceWhitelist") or []:
        if entry["kind"] == "Namespace" and entry.get("name") != config.deploy.namespace:
            problems.append(f"{label}: the Namespace entry of clusterResourceWhitelist must be limited to "
                            f"name {config.deploy.namespace}")
    return problems


CLUSTER_SCOPED = {("", "Namespace"), ("rbac.authorization.k8s.io", "ClusterRole"),
                  ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("", "PersistentVolume"),
                  ("storage.k8s.io", "StorageClass"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
                  ("scheduling.k8s.io", "PriorityClass")}


def overlay_kinds(objects_by_target: dict[str, Iterable[dict]]) -> dict[str, set[tuple[str, str]]]:
    """target -> namespaced (group, kind)s of its built overlay, plus "__cluster__" -> cluster-scoped ones."""
    result: dict[str, set[tuple[str, str]]] = {"__cluster__": set()}
    for target, objects in objects_by_target.items():
        result[target] = set()
        for obj in objects:
            group = obj["apiVersion"].rpartition("/")[0]
            gk = (group, obj["kind"])
            (result["__cluster__"] if gk in CLUSTER_SCOPED else result[target]).add(gk)
    return result


def check(repo_root: Path | str = paths.REPO_ROOT, config: Config | None = None,
          built: dict[str, list[dict]] | None = None) -> list[str]:
    """Every problem with k8s/argocd/ (schema and settings); `built`: target -> objects (default: kustomize)."""
    repo_root = Path(repo_root)
    config = config or load_config(repo_root / paths.MODEL_YAML)
    if built is None:
        from tools import kustomize

        built = {t: kustomize.build(repo_root / paths.OVERLAYS_DIR / t) for t in config.targets}
    objects = load_objects(repo_root)
    if not objects:
        return [f"{paths.ARGOCD_DIR}/ holds no Argo CD objects: run `make render`"]
    problems = [f"{rel}: {p}" for rel, obj in objects for p in schema_problems(obj)]
    if problems:
        return problems
    by_kind: dict[str, list[dict]] = {}
    for _, obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    projects = by_kind.get("AppProject", [])
    if len(projects) != 1:
        return problems + [f"{paths.ARGOCD_DIR}/ must hold exactly one AppProject, found {len(projects)}"]
    project = projects[0]["metadata"]["name"]
    problems += appproject_problems(projects[0], config, overlay_kinds(built))
    for appset in by_kind.get("ApplicationSet", []):
        problems += applicationset_problems(appset, config, project)
    apps = {a["spec"]["source"]["path"]: a for a in by_kind.get("Application", [])}
    for path in sorted(set(apps) - {f"{paths.OVERLAYS_DIR}/{t}" for t in config.targets}):
        problems.append(f"Application/{apps[path]['metadata']['name']}: {path} is not the overlay of any target")
    for target in config.targets:
        app = apps.get(f"{paths.OVERLAYS_DIR}/{target}")
        if app is None:
            problems.append(f"no plain Application for overlay {paths.OVERLAYS_DIR}/{target}")
            continue
        problems += application_problems(f"Application/{app['metadata']['name']}", app["metadata"], app["spec"],
                                         config, project)
    return problems
