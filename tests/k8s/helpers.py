"""Helpers of the Kubernetes tests: throw-away copies of the repository (the real tree is never written)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import yaml

from tools import paths

REPO = paths.REPO_ROOT
# What render and check read: the config, the templates and the manifests.
REPO_PARTS = (paths.MODEL_YAML, paths.TEMPLATES_DIR, paths.K8S_DIR)


def copy_repo(dest: Path) -> Path:
    for part in REPO_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def tree_digest(root: Path) -> dict[str, str]:
    """relpath -> sha256 of every file below root: compare before/after to prove nothing was written."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
