"""Strict OpenAPI-schema validation of built objects against several Kubernetes minor versions.

Uses kubernetes-validate's bundled schemas (1.25 to 1.37 in the pinned 1.37.0) in their strict form, where every
object has `additionalProperties: false`: an unknown or misspelled field fails, as `kubectl apply
--validate=strict` would. Objects of API groups Kubernetes does not define (Argo CD's CRDs) have no schema
there and are reported as skipped, never as passed; except the custom resources whose upstream CRDs are vendored
(PodMonitor, PrometheusRule, ScaledObject: tools/observability/crds.py), which are validated strictly against them.

The schemas are read once per (version, kind) and reused: kubernetes_validate.validate() re-reads the 1.4 MB
definitions file on every call, which made `make check` spend seconds parsing JSON.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from tools.observability import crds
from tools.rollout import crds as rollout_crds  # issue 14: Rollout, AnalysisTemplate

# The minor versions every object must be valid on: the oldest still commonly supported by managed
# Kubernetes (GKE, EKS, AKS) through the newest the pinned kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")


@dataclass
class SchemaReport:
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<apiVersion> <kind>/<name>" without a Kubernetes schema
    validated: int = 0


def describe(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def is_kubernetes_api(api_version: str) -> bool:
    """Core and *.k8s.io groups (and the dot-less built-in groups such as apps, batch, policy)."""
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


class NoSchema(Exception):
    pass


def _schema_dir(version: str) -> str:
    if f"{version}.0" not in kubernetes_validate.utils.all_versions():
        raise ValueError(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes {version}")
    return f"kubernetes-json-schema/v{version}.0-local-strict"


@functools.lru_cache(maxsize=None)
def _registry(version: str) -> Registry:
    definitions = schema_contents(f"{_schema_dir(version)}/_definitions.json", version)
    return Resource.from_contents(definitions) @ Registry()


@functools.lru_cache(maxsize=None)
def _validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{_schema_dir(version)}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise NoSchema(f"no schema for {kind} in {api_version}") from None
    registry = Resource.from_contents(schema) @ _registry(version)
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_object(obj: dict[str, Any], version: str) -> list[str]:
    """Every schema error of obj on one Kubernetes minor version ("<field path>: <message>"); [] when valid."""
    validator = _validator(version, str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.path])
    return [f"{'.'.join(str(p) for p in e.path) or '(top level)'}: {e.message}" for e in errors]


def validate_objects(objects: Iterable[dict[str, Any]], versions: Iterable[str] = KUBERNETES_VERSIONS) -> SchemaReport:
    report = SchemaReport()
    versions = tuple(versions)
    for obj in objects:
        api_version = str(obj.get("apiVersion", ""))
        vendored = next((c for c in (crds, rollout_crds) if c.covers(obj)), None)
        if vendored is not None:
            # One schema for every Kubernetes version: the CRD's, as vendored.
            found = vendored.validate(obj)
            report.errors.extend(f"{describe(obj)} ({api_version}, vendored CRD): {p.split(': ', 1)[1]}" for p in found)
            report.validated += not found
            continue
        problems = []
        for version in versions:
            try:
                found = validate_object(obj, version)
            except NoSchema as exc:
                if not is_kubernetes_api(api_version):
                    report.skipped.append(f"{api_version} {describe(obj)}")
                    break
                found = [str(exc)]
            problems.extend((version, problem) for problem in found)
        else:
            if not problems:
                report.validated += 1
        # One line per distinct problem, naming the versions it occurs on.
        by_message: dict[str, list[str]] = {}
        for version, message in problems:
            by_message.setdefault(message, []).append(version)
        for message, on in by_message.items():
            report.errors.append(f"{describe(obj)} ({api_version}, Kubernetes {', '.join(on)}): {message}")
    return report
