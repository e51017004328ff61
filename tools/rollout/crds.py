"""Validation of Rollout and AnalysisTemplate against the vendored upstream Argo Rollouts CRDs (crds/*.yaml).

    problems = validate(obj)        # ["<kind>/<name>: <path>: <message>", ...]; [] when valid
    covers(obj)                     # True for the kinds these CRDs define

Strict as tools/observability/crds.py: every object schema that lists properties (and does not preserve unknown
fields) gets `additionalProperties: false`, because the API server prunes an unknown field silently and the
controller then ignores it: a misspelled `canaryService` or `successCondition` would quietly do nothing.
The CRDs are 0.6 MB each: read once, with libyaml when PyYAML has it.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tools.observability.crds import _strict  # the same strictness for every vendored CRD

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("rollout-crd.yaml", "analysis-template-crd.yaml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=None)
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every vendored CRD."""
    found = {}
    for name in CRD_FILES:
        crd = yaml.load((CRD_DIR / name).read_text(), Loader=_Loader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                found[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return found


def covers(obj: dict[str, Any]) -> bool:
    return (str(obj.get("apiVersion", "")).rpartition("/")[0], obj.get("kind")) in {
        (api.rpartition("/")[0], kind) for api, kind in schemas()}


def validate(obj: dict[str, Any]) -> list[str]:
    api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    label = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
    schema = schemas().get((api, kind))
    if schema is None:
        return [f"{label}: {api} is not a served version of a vendored CRD ({', '.join(a for a, _ in schemas())})"]
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{label}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]
