"""Where every cluster stands: Argo CD sync and health, rollout progress, and the model version it really serves.

    make status [ARGS="--context argocd-admin"]
    python -m tools status [--kubeconfig PATH] [--context CTX] [--cluster NAME_OR_SERVER=CTX ...]

Reads, with the kubernetes Python client:
- in the Argo CD cluster (kubeconfig context --context, default the current one): the model's Applications
  (argoproj.io/v1alpha1, label tf-serving-gitops/model=<name>, in deploy.argocd_namespace): sync status and
  revision, health, and the last sync operation (a failed PostSync smoke test shows here);
- in each Application's destination cluster: the tf-serving Deployment (updated/ready/available replicas of
  the desired count) and its pods, whose annotations (tf-serving-gitops/model-version, -model-digest) say what
  each pod serves. Only ready pods count as serving.
A destination is reached through the kubeconfig context whose cluster server is the destination's server
(https://kubernetes.default.svc: the Argo CD cluster itself), or the one named with --cluster.

Only reads. Tested against recorded API responses fed through the client's own deserialization
(tests/gitops/test_status.py), not against a live cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tools.config import Config
from tools.errors import UserError
from tools.render import names

ARGO_GROUP, ARGO_VERSION, ARGO_APPLICATIONS = "argoproj.io", "v1alpha1", "applications"
MODEL_LABEL = f"{names.ANNOTATION_PREFIX}model"
TARGET_LABEL = f"{names.ANNOTATION_PREFIX}target"
IN_CLUSTER = "https://kubernetes.default.svc"
POD_SELECTOR = f"app.kubernetes.io/name={names.APP_NAME},app.kubernetes.io/component=model-server"


@dataclass
class Row:
    """One Application: one cluster's view."""

    application: str
    cluster: str
    target: str
    sync: str
    health: str
    last_sync: str
    rollout: str = "-"
    serving: dict[tuple[str, str], int] = field(default_factory=dict)  # (version, digest) -> ready pods
    not_ready: int = 0
    deployment_version: str | None = None  # what the Deployment's pod template asks for
    notes: list[str] = field(default_factory=list)
    canary: Any = None  # issue 14: tools.rollout.status.RolloutState of a canary target


Clients = Callable[[dict], "tuple[Any, Any] | None"]  # destination -> (AppsV1Api, CoreV1Api) or None


def api_error(exc: BaseException) -> str:
    """One line for an API or connection failure."""
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    text = str(reason or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _errors():
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def list_applications(custom, config: Config) -> list[dict]:
    """The model's Applications (a CustomObjectsApi list call); UserError when Argo CD cannot be read."""
    try:
        answer = custom.list_namespaced_custom_object(
            ARGO_GROUP, ARGO_VERSION, config.deploy.argocd_namespace, ARGO_APPLICATIONS,
            label_selector=f"{MODEL_LABEL}={config.model.name}")
    except _errors() as exc:
        raise UserError(f"cannot list Argo CD Applications in namespace {config.deploy.argocd_namespace}: "
                        f"{api_error(exc)}") from None
    return sorted(answer.get("items") or [], key=lambda a: a["metadata"]["name"])


def application_row(app: dict) -> Row:
    meta, spec, status = app["metadata"], app.get("spec") or {}, app.get("status") or {}
    destination = spec.get("destination") or {}
    sync = status.get("sync") or {}
    revision = (sync.get("revision") or "")[:7]
    operation = status.get("operationState") or {}
    phase = operation.get("phase") or "-"
    row = Row(
        application=meta["name"],
        cluster=destination.get("name") or destination.get("server") or "?",
        target=(meta.get("labels") or {}).get(TARGET_LABEL)
        or (spec.get("source") or {}).get("path", "?").rsplit("/", 1)[-1],
        sync=f"{sync.get('status', 'Unknown')}{'@' + revision if revision else ''}",
        health=(status.get("health") or {}).get("status", "Unknown"),
        last_sync=phase,
    )
    if phase in ("Failed", "Error") and operation.get("message"):
        row.notes.append(f"last sync {phase.lower()}: {operation['message']}")
    for condition in status.get("conditions") or []:
        if condition.get("type", "").endswith("Error") or condition.get("type") == "OrphanedResourceWarning":
            row.notes.append(f"{condition['type']}: {condition.get('message', '')}")
    return row


def add_cluster_state(row: Row, apps_api, core_api, namespace: str) -> None:
    """Fill the rollout and serving columns from the destination cluster's Deployment and pods."""
    errors = _errors()
    try:
        deployment = apps_api.read_namespaced_deployment(names.DEPLOYMENT, namespace)
    except errors as exc:
        row.rollout = "?"
        row.notes.append(f"cannot read Deployment {namespace}/{names.DEPLOYMENT}: {api_error(exc)}")
        return
    desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    st = deployment.status
    row.rollout = (f"{st.updated_replicas or 0}/{desired} updated, {st.ready_replicas or 0} ready, "
                   f"{st.available_replicas or 0} available")
    if (st.observed_generation or 0) < (deployment.metadata.generation or 0):
        row.rollout += " (new spec not yet observed)"
    annotations = deployment.spec.template.metadata.annotations or {}
    row.deployment_version = annotations.get(names.ANNOTATION_MODEL_VERSION)
    try:
        pods = core_api.list_namespaced_pod(namespace, label_selector=POD_SELECTOR).items
    except errors as exc:
        row.notes.append(f"cannot list pods in {namespace}: {api_error(exc)}")
        return
    for pod in pods:
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        if pod.metadata.deletion_timestamp is not None or not ready:
            row.not_ready += 1
            continue
        a = pod.metadata.annotations or {}
        key = (a.get(names.ANNOTATION_MODEL_VERSION, "?"), a.get(names.ANNOTATION_MODEL_DIGEST, "?"))
        row.serving[key] = row.serving.get(key, 0) + 1


def collect(config: Config, custom, clients: Clients) -> list[Row]:
    rows = []
    for app in list_applications(custom, config):
        row = application_row(app)
        destination = (app.get("spec") or {}).get("destination") or {}
        pair = clients(destination)
        if pair is None:
            row.rollout = "?"
            row.notes.append(f"no kubeconfig context for cluster {row.cluster}: pass --cluster {row.cluster}=<context>")
        else:
            add_cluster_state(row, *pair, destination.get("namespace") or config.deploy.namespace)
            # Issue 14: a canary target's Rollout step and analysis runs (tools/rollout/status.py).
            target = config.targets.get(row.target)
            if target is not None and target.rollout is not None and target.rollout.strategy == "canary":
                from tools.rollout import status as rollout_status

                row.canary = rollout_status.add_to_row(row, pair[0].api_client,
                                                       destination.get("namespace") or config.deploy.namespace)
        rows.append(row)
    return rows


def short_digest(digest: str) -> str:
    return digest[:19] + "…" if digest.startswith("sha256:") and len(digest) > 20 else digest


def render_table(config: Config, rows: list[Row]) -> str:
    """A readable, fixed-width table plus the notes that explain anything not converged."""
    model = config.model
    pins = ", ".join(f"{layout} {short_digest(d)}" for layout, d in model.digests.items()) or "no digests"
    lines = [f"model.yaml pins {model.name} v{model.version} ({pins})", ""]
    if not rows:
        return "\n".join(lines + [f"no Argo CD Application carries the label {MODEL_LABEL}={model.name} "
                                  f"in namespace {config.deploy.argocd_namespace}"]) + "\n"
    header = ("APPLICATION", "CLUSTER", "TARGET", "SYNC", "HEALTH", "LAST SYNC", "ROLLOUT", "SERVING (ready pods)")
    table = [header]
    notes = []
    for row in rows:
        serving = ", ".join(f"v{v} {short_digest(d)} ×{n}" for (v, d), n in sorted(row.serving.items())) or "nothing"
        if row.not_ready:
            serving += f" (+{row.not_ready} not ready)"
        expected = model.digests.get(config.targets[row.target].layout) if row.target in config.targets else None
        converged = set(row.serving) == {(str(model.version), expected or names.UNPINNED_DIGEST)}
        flag = "" if converged and row.sync.startswith("Synced") and row.health == "Healthy" else " *"
        table.append((row.application + flag, row.cluster, row.target, row.sync, row.health, row.last_sync,
                      row.rollout, serving))
        notes += [f"* {row.application}: {note}" for note in row.notes]
        if not converged and row.serving:
            why = ""
            if row.deployment_version == str(model.version):
                why = f" (its Deployment asks for v{model.version}: rollout in progress)"
            elif row.deployment_version:
                why = f" (its Deployment still asks for v{row.deployment_version}: not synced)"
            notes.append(f"* {row.application}: serves {', '.join(f'v{v}' for v, _ in sorted(row.serving))}; "
                         f"model.yaml pins v{model.version}{why}")
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


# ---- the live wiring (kubeconfig contexts -> API clients); everything above takes clients as arguments ----

def kubeconfig_servers(kubeconfig: str | None) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(context -> server, cluster name -> server, current context) from the kubeconfig file(s)."""
    import os

    import yaml

    files = (kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(os.pathsep)
    contexts, clusters, current = {}, {}, None
    # issue 13: a file named on the command line that is not there is the problem to report, not "no contexts".
    if kubeconfig:
        for file in kubeconfig.split(os.pathsep):
            if file and not Path(file).exists():
                raise UserError(f"kubeconfig file {file} does not exist")
            if file and Path(file).is_dir():
                raise UserError(f"kubeconfig {file} is a directory, not a file")
    for file in files:
        if not file or not Path(file).is_file():
            continue
        data = yaml.safe_load(Path(file).read_text()) or {}
        for c in data.get("clusters") or []:
            clusters.setdefault(c["name"], (c.get("cluster") or {}).get("server"))
        for c in data.get("contexts") or []:
            contexts.setdefault(c["name"], (c.get("context") or {}).get("cluster"))
        current = current or data.get("current-context")
    if not contexts:
        raise UserError(f"no kubeconfig contexts found in {os.pathsep.join(files)}: status needs cluster access")
    return {ctx: clusters.get(cluster) for ctx, cluster in contexts.items()}, clusters, current


def status(config: Config, *, kubeconfig: str | None = None, context: str | None = None,
           cluster_contexts: dict[str, str] | None = None) -> str:
    """The table for the live clusters of the current kubeconfig."""
    return render_table(config, live_rows(config, kubeconfig=kubeconfig, context=context,
                                          cluster_contexts=cluster_contexts))


def live_rows(config: Config, *, kubeconfig: str | None = None, context: str | None = None,
              cluster_contexts: dict[str, str] | None = None) -> list[Row]:
    """The rows of the live clusters of the current kubeconfig (`make rollback` quotes their failed analyses)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    context_servers, _, current = kubeconfig_servers(kubeconfig)
    argocd_context = context or current
    if argocd_context not in context_servers:
        raise UserError(f"kubeconfig has no context {argocd_context!r} (it has {', '.join(sorted(context_servers))})")
    overrides = dict(cluster_contexts or {})
    cache: dict[str, Any] = {}

    def api_client(ctx: str):
        if ctx not in cache:
            try:
                cache[ctx] = k8s_config.new_client_from_config(config_file=kubeconfig, context=ctx)
            except Exception as exc:  # the loader raises ConfigException, ValueError, OSError...
                raise UserError(f"cannot use kubeconfig context {ctx!r}: {exc}") from None
        return cache[ctx]

    def clients(destination: dict):
        server, name = destination.get("server"), destination.get("name")
        ctx = overrides.get(name or "") or overrides.get(server or "")
        if ctx is None and (server == IN_CLUSTER or name == "in-cluster"):
            ctx = argocd_context
        if ctx is None and server:
            ctx = next((c for c, s in sorted(context_servers.items()) if s == server), None)
        if ctx is None:
            return None
        api = api_client(ctx)
        return k8s.AppsV1Api(api), k8s.CoreV1Api(api)

    custom = k8s.CustomObjectsApi(api_client(argocd_context))
    return collect(config, custom, clients)
