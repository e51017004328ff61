"""The Argo CD objects against the CRDs of the oldest and newest supported Argo CD release (vendored as data).

    problems = crd_problems(obj, release)        # [] when `obj` is valid for that Argo CD release
    SUPPORTED -> ("v3.3.0", "v3.5.1")            # the releases under tools/argocd/crds/, oldest first

Two kinds of problems: what the API server would reject (types, enums, required fields of the CRD's
openAPIV3Schema, checked with jsonschema) and what it would silently drop: a CRD prunes every field its schema
does not declare, so a field newer than the release (clusterResourceWhitelist[].name before 3.3) would vanish
without an error and Argo CD would then allow more than we asked. Both are errors here.

Why 3.3 is the oldest: AppProject clusterResourceWhitelist[].name (Argo CD 3.3) limits the Namespace this project
may manage to the serving one; the retry `refresh` field needs 3.2. Regenerate a release's file from a clone of
argoproj/argo-cd with `python -m tools.argocd.crds <argo-cd .git dir> <tag> <out.json>`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("application", "applicationset", "appproject")


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(p) for p in release.lstrip("v").split("."))


def releases(crds_dir: Path = CRDS_DIR) -> list[str]:
    return sorted((p.stem.removeprefix("argocd-") for p in crds_dir.glob("argocd-v*.json")), key=_version_key)


SUPPORTED = tuple(releases())


@lru_cache(maxsize=None)
def load(release: str, crds_dir: Path = CRDS_DIR) -> dict[str, Any]:
    path = Path(crds_dir) / f"argocd-{release}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no vendored Argo CD CRDs for {release} ({path})")
    return json.loads(path.read_text())


def _unknown_fields(obj: Any, schema: dict, where: str) -> list[str]:
    """Fields the CRD does not declare (the API server prunes them), as dotted paths."""
    out = []
    if isinstance(obj, dict) and schema.get("type") == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            path = f"{where}.{key}" if where else key
            if props is not None and key in props:
                out += _unknown_fields(value, props[key], path)
            elif isinstance(extra, dict):
                out += _unknown_fields(value, extra, path)
            elif props is not None and where not in ("metadata",) and not where.endswith(".metadata"):
                out.append(path)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(obj):
            out += _unknown_fields(value, schema["items"], f"{where}[{i}]")
    return out


def crd_problems(obj: dict, release: str, crds_dir: Path = CRDS_DIR) -> list[str]:
    data = load(release, crds_dir)
    kind = obj.get("kind")
    name = (obj.get("metadata") or {}).get("name", "?")
    label = f"Argo CD {release}: {kind}/{name}"
    entry = data["kinds"].get(kind)
    if entry is None or obj.get("apiVersion") != entry["apiVersion"]:
        return [f"{label}: not a kind this release defines ({', '.join(sorted(data['kinds']))})"]
    schema = entry["openAPIV3Schema"]
    problems = []
    for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"{label}: {where}: {error.message}")
    for path in _unknown_fields({k: v for k, v in obj.items() if k != "metadata"}, schema, ""):
        problems.append(f"{label}: {path}: not in this release's CRD (the API server would drop it silently)")
    return problems


def vendor(git_dir: str, tag: str, out: Path) -> None:
    """Write one release's schemas from a clone of argoproj/argo-cd (descriptions dropped, nothing else)."""
    def strip(o):
        if isinstance(o, dict):
            # A schema's `description` is text; a property named description is a schema (a dict): keep that.
            return {k: strip(v) for k, v in o.items() if not (k == "description" and isinstance(v, str))}
        return [strip(v) for v in o] if isinstance(o, list) else o

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout

    commit = git("rev-parse", f"{tag}^{{commit}}").strip()
    kinds = {}
    for f in CRD_FILES:
        crd = yaml.safe_load(git("show", f"{tag}:manifests/crds/{f}-crd.yaml"))
        (version,) = crd["spec"]["versions"]
        kinds[crd["spec"]["names"]["kind"]] = {"apiVersion": f"{crd['spec']['group']}/{version['name']}",
                                               "openAPIV3Schema": strip(version["schema"]["openAPIV3Schema"])}
    source = (f"github.com/argoproj/argo-cd {tag} (commit {commit}), manifests/crds/{{{','.join(CRD_FILES)}}}-crd.yaml: "
              "each CRD's openAPIV3Schema with the description fields removed; vendored as data by tools/argocd/crds.py")
    out.write_text(json.dumps({"_source": source, "release": tag, "commit": commit, "kinds": kinds},
                              sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":  # python -m tools.argocd.crds <argo-cd .git dir> <tag> <out.json>
    vendor(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
