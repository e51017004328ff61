"""Validation of PodMonitor, PrometheusRule and ScaledObject against their vendored upstream CRDs (crds/*.yaml).

    problems = validate(obj)        # ["<kind>/<name>: <path>: <message>", ...]; [] when valid
    KINDS                           # {(group, kind)} these schemas cover

The CRDs' openAPIV3Schema is used strictly: every object schema that lists properties (and does not preserve
unknown fields) gets `additionalProperties: false`, because the API server prunes an unknown field silently
and the operator then ignores it, so a misspelled `relabelings` or `minReplicaCount` would quietly do
nothing. CEL rules (x-kubernetes-validations) are not evaluated here; the API server does that.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("podmonitors.yaml", "prometheusrules.yaml", "scaledobjects.yaml")


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.lru_cache(maxsize=None)
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every vendored CRD."""
    found = {}
    for name in CRD_FILES:
        crd = yaml.safe_load((CRD_DIR / name).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                found[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return found


def kinds() -> set[tuple[str, str]]:
    return {(api.rpartition("/")[0], kind) for api, kind in schemas()}


def covers(obj: dict[str, Any]) -> bool:
    return (str(obj.get("apiVersion", "")).rpartition("/")[0], obj.get("kind")) in kinds()


def validate(obj: dict[str, Any]) -> list[str]:
    api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    label = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
    schema = schemas().get((api, kind))
    if schema is None:
        return [f"{label}: {api} is not a served version of a vendored CRD ({', '.join(a for a, _ in schemas())})"]
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{label}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]
