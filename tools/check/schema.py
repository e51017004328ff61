"""Strict OpenAPI-schema validation of built objects against several Kubernetes minor versions.

Uses kubernetes-validate's bundled schemas (1.25 to 1.37 in the pinned 1.37.0) in their strict form, where every
object has `additionalProperties: false`: an unknown or misspelled field fails, as `kubectl apply
--validate=strict` would. Objects of API groups Kubernetes does not define (Argo CD's CRDs) have no schema
there and are reported as skipped, never as passed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import kubernetes_validate

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


def validate_objects(objects: Iterable[dict[str, Any]], versions: Iterable[str] = KUBERNETES_VERSIONS) -> SchemaReport:
    report = SchemaReport()
    versions = tuple(versions)
    for obj in objects:
        api_version = str(obj.get("apiVersion", ""))
        problems = []
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path) or "(top level)"
                problems.append((version, f"{where}: {exc.message}"))
            except kubernetes_validate.SchemaNotFoundError:
                if not is_kubernetes_api(api_version):
                    report.skipped.append(f"{api_version} {describe(obj)}")
                    break
                problems.append((version, f"Kubernetes {version} has no {obj.get('kind')} in {api_version}"))
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
