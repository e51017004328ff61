"""Golden files: every object of every built overlay, one file each, so a review shows any manifest change.

    tests/k8s/golden/<overlay>/<kind>-<name>.yaml       (kind lowercased, name as built, hash suffix included)

    from tools.check import golden
    golden.expected(repo_root)      # {relpath: text}: what the golden folder must hold for the committed tree
    golden.differences(repo_root)   # [(relpath, "changed" | "missing" | "stale")]
    golden.write(repo_root)         # rewrite the folder (after `make render`); returns the changed relpaths

tests/k8s/test_golden.py compares; `pytest tests/k8s/test_golden.py --update-golden` and `make bump` rewrite.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tools import config as config_mod
from tools import kustomize, paths
from tools.render import replace_folder


class _Dumper(yaml.SafeDumper):
    pass


# Scripts and TF Serving configs inside ConfigMaps stay readable as YAML block scalars.
_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def dump(objects: list[dict[str, Any]], overlay: str) -> dict[str, str]:
    """file name -> text for the objects of one built overlay."""
    header = (f"# One object of `kustomize build {paths.OVERLAYS_DIR}/{overlay}`. Do not edit: "
              "`pytest tests/k8s/test_golden.py --update-golden` rewrites it.\n")
    files: dict[str, str] = {}
    for obj in objects:
        name = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        if name in files:
            raise ValueError(f"two objects of {overlay} would share the golden file {name}")
        files[name] = header + yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return files


def expected(repo_root: Path | str = paths.REPO_ROOT, config_path: Path | str | None = None) -> dict[str, str]:
    repo_root = Path(repo_root)
    config = config_mod.load_config(config_path or repo_root / paths.MODEL_YAML)
    files = {}
    for overlay in config.targets:
        built = kustomize.build(repo_root / paths.OVERLAYS_DIR / overlay)
        files.update({f"{paths.GOLDEN_DIR}/{overlay}/{name}": text for name, text in dump(built, overlay).items()})
    return files


def _on_disk(repo_root: Path) -> dict[str, str]:
    root = repo_root / paths.GOLDEN_DIR
    return {p.relative_to(repo_root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))} \
        if root.is_dir() else {}


def differences(repo_root: Path | str = paths.REPO_ROOT,
                config_path: Path | str | None = None) -> list[tuple[str, str]]:
    repo_root = Path(repo_root)
    want, have = expected(repo_root, config_path), _on_disk(repo_root)
    return [(rel, "missing" if rel not in have else "stale" if rel not in want else "changed")
            for rel in sorted(set(want) | set(have)) if want.get(rel) != have.get(rel)]


def write(repo_root: Path | str = paths.REPO_ROOT, config_path: Path | str | None = None) -> list[str]:
    """Replace tests/k8s/golden/ by the current builds (built first: a failing build writes nothing)."""
    repo_root = Path(repo_root)
    want = expected(repo_root, config_path)
    changed = [rel for rel, _ in differences(repo_root, config_path)]
    if changed:
        replace_folder(repo_root, paths.GOLDEN_DIR, want)
    return changed
