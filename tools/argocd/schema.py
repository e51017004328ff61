"""JSON schemas of the Argo CD objects in k8s/argocd/: exactly the fields this repository uses.

Written from the upstream CRDs (argoproj/argo-cd manifests/crds/{application,applicationset,appproject}-crd.yaml,
checked against v3.5; every property below exists there with this type). Unlike the CRDs, every object here has
`additionalProperties: false`: the API server prunes an unknown field silently and Argo CD then ignores it, so
a misspelled `selfHeal` or `applicationsSync` would quietly turn a safety setting off. Here it is an error.
"""
from __future__ import annotations

from typing import Any

STRING = {"type": "string", "minLength": 1}
BOOL = {"type": "boolean"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
STRINGS = {"type": "array", "items": STRING}
# Go's time.ParseDuration syntax, as the retry backoff fields take it ("30s", "1m30s").
DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}

# Application-level sync options, spelled as upstream defines them (gitops-engine pkg/sync/common/types.go
# and docs/user-guide/sync-options.md). Argo CD ignores an option it does not know, so a typo would be silent.
SYNC_OPTIONS = (
    "ApplyOutOfSyncOnly=true", "ApplyOutOfSyncOnly=false",
    "ClientSideApplyMigration=true", "ClientSideApplyMigration=false",
    "CreateNamespace=true",
    "FailOnSharedResource=true",
    "PruneLast=true",
    "PrunePropagationPolicy=foreground", "PrunePropagationPolicy=background", "PrunePropagationPolicy=orphan",
    "Replace=true", "Replace=false",
    "RespectIgnoreDifferences=true",
    "ServerSideApply=true", "ServerSideApply=false",
    "SkipDryRunOnMissingResource=true",
    "Validate=false",
)

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
API_VERSION = "argoproj.io/v1alpha1"


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    """An object with exactly these properties (none other allowed)."""
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: dict[str, Any], min_items: int = 0) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": min_items}


def metadata(namespaced: bool = True) -> dict[str, Any]:
    props = {"name": STRING, "labels": STRING_MAP, "annotations": STRING_MAP, "finalizers": STRINGS}
    if namespaced:
        props["namespace"] = STRING
    return obj(("name", "namespace") if namespaced else ("name",), **props)


def document(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return obj(
        ("apiVersion", "kind", "metadata", "spec"),
        apiVersion={"const": API_VERSION},
        kind={"const": kind},
        metadata=metadata(),
        spec=spec,
    )


# Application .spec (and the ApplicationSet's template .spec): ApplicationSpec in the CRDs.
SYNC_POLICY = obj(
    automated=obj(prune=BOOL, selfHeal=BOOL, allowEmpty=BOOL, enabled=BOOL),
    syncOptions={"type": "array", "items": {"enum": list(SYNC_OPTIONS)}, "uniqueItems": True},
    retry=obj(
        limit={"type": "integer", "minimum": -1},
        backoff=obj(duration=DURATION, factor={"type": "integer", "minimum": 1}, maxDuration=DURATION),
        refresh=BOOL,
    ),
)
APPLICATION_SPEC = obj(
    ("project", "source", "destination"),
    project=STRING,
    source=obj(("repoURL", "path", "targetRevision"), repoURL=STRING, path=STRING, targetRevision=STRING),
    destination=obj(("namespace",), server=STRING, name=STRING, namespace=STRING),
    syncPolicy=SYNC_POLICY,
)

APPLICATION = document("Application", APPLICATION_SPEC)

LABEL_SELECTOR = obj(
    matchLabels=STRING_MAP,
    matchExpressions=array(obj(
        ("key", "operator"),
        key=STRING,
        operator={"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        values=STRINGS,
    )),
)

APPLICATION_SET = document("ApplicationSet", obj(
    ("generators", "template"),
    goTemplate=BOOL,
    goTemplateOptions=STRINGS,
    syncPolicy=obj(
        applicationsSync={"enum": ["create-only", "create-update", "create-delete", "sync"]},
        preserveResourcesOnDeletion=BOOL,
    ),
    generators=array(obj(("clusters",), clusters=obj(selector=LABEL_SELECTOR, values=STRING_MAP)), min_items=1),
    template=obj(
        ("metadata", "spec"),
        metadata=obj(("name",), name=STRING, labels=STRING_MAP, annotations=STRING_MAP, finalizers=STRINGS),
        spec=APPLICATION_SPEC,
    ),
))

GROUP_KIND = obj(("group", "kind"), group={"type": "string"}, kind=STRING)
APP_PROJECT = document("AppProject", obj(
    ("sourceRepos", "destinations"),
    description=STRING,
    sourceRepos=array(STRING, min_items=1),
    destinations=array(obj(("namespace",), server=STRING, name=STRING, namespace=STRING), min_items=1),
    # `name` on cluster resources: Argo CD >= 3.3.
    clusterResourceWhitelist=array(obj(("group", "kind"), group={"type": "string"}, kind=STRING, name=STRING)),
    namespaceResourceWhitelist=array(GROUP_KIND),
    orphanedResources=obj(warn=BOOL),
))

SCHEMAS = {"Application": APPLICATION, "ApplicationSet": APPLICATION_SET, "AppProject": APP_PROJECT}
