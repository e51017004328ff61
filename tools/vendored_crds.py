"""Strict validation of objects against upstream CustomResourceDefinitions vendored as YAML files.

    rollouts = VendoredCRDs(Path(".../crds"), ("rollout-crd.yaml", ...))
    rollouts.validate(obj)     # ["<kind>/<name>: <path>: <message>", ...]; [] when valid
    rollouts.covers(obj)       # True for the group and kind of one of these CRDs
    rollouts.kinds()           # {(group, kind)}

The CRDs' openAPIV3Schema is used strictly: every object schema that lists properties (and does not preserve
unknown fields) gets `additionalProperties: false`, because the API server prunes an unknown field silently and
the controller then ignores it, so a misspelled `relabelings`, `minReplicaCount` or `canaryService` would quietly
do nothing. CEL rules (x-kubernetes-validations) are not evaluated here; the API server does that.
One loader for every vendored set (Prometheus Operator, KEDA, Argo Rollouts): some CRDs are 0.6 MB, so each file
is read once, with libyaml when PyYAML has it.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def strict(node: Any) -> Any:
    """A copy of a schema with `additionalProperties: false` wherever the API server would prune."""
    if isinstance(node, dict):
        node = {k: strict(v) for k, v in node.items()}
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


class VendoredCRDs:
    def __init__(self, crd_dir: Path, files: tuple[str, ...]):
        self.crd_dir, self.files = crd_dir, files

    @functools.cached_property
    def schemas(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(apiVersion, kind) -> strict JSON schema, for every served version of every vendored CRD."""
        found = {}
        for name in self.files:
            crd = yaml.load((self.crd_dir / name).read_text(), Loader=_Loader)
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    found[(f"{group}/{version['name']}", kind)] = strict(schema)
        return found

    def kinds(self) -> set[tuple[str, str]]:
        return {(api.rpartition("/")[0], kind) for api, kind in self.schemas}

    def covers(self, obj: dict[str, Any]) -> bool:
        return (str(obj.get("apiVersion", "")).rpartition("/")[0], obj.get("kind")) in self.kinds()

    def validate(self, obj: dict[str, Any]) -> list[str]:
        api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        label = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
        schema = self.schemas.get((api, kind))
        if schema is None:
            served = ", ".join(a for a, _ in self.schemas)
            return [f"{label}: {api} is not a served version of a vendored CRD ({served})"]
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
        return [f"{label}: {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]
