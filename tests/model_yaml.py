"""model.yaml for tests that need one but are not about the repository's own values.

The repository's model.yaml legitimately changes: `make bump` sets `model.version` and pins `model.digests`, and
a team's fork sets its own store, Git repository and namespaces. A test that edited the real file by text
replacement (`text.replace("version: 1 ", ...)`) silently edited nothing there, then failed, or pointed at the
team's real store. These helpers give such tests the repository's own file, comments and all, edited with the
same round-trip YAML settings as `make bump` (tools/bump/model_yaml.py) to BASELINE:

    model.name resnet, model.version 1, `digests: {}` exactly as the unbumped file spells it (comment, column
    and the blank line after it), store.uri gs://your-team-models/tf-serving (the example bucket, never
    reached by a test) with publish_uri null, and the example deploy section.

Everything else (targets, sources, comments) stays the repository's, so a new key in model.yaml reaches the tests
by itself. Change values by key path, structurally, never by text replacement:

    baseline_text({"store.uri": "pvc://models/resnet", "store.publish_uri": f"file://{store}"})
    edit(text, {"model.version": 3})

Tests ABOUT the repository's own files (render drift of the committed overlays, their golden files, `make check`
on the tree, "the repository's model.yaml is valid") read the real model.yaml instead: they must follow it.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from tools import paths
from tools.bump.model_yaml import _yaml, set_version

EXAMPLE_STORE = "gs://your-team-models/tf-serving"
EXAMPLE_REPO_URL = "https://github.com/your-org/tf-serving-gitops.git"

# Key path -> value of every test model.yaml unless a test asks otherwise.
BASELINE: dict[str, Any] = {
    "model.name": "resnet",
    "model.version": 1,
    "model.digests": {},
    "store.uri": EXAMPLE_STORE,
    "store.publish_uri": None,
    "deploy.namespace": "tf-serving",
    "deploy.repo_url": EXAMPLE_REPO_URL,
    "deploy.revision": "main",
    "deploy.argocd_namespace": "argocd",
    "deploy.gpu_cluster_label.key": "accelerator",
    "deploy.gpu_cluster_label.value": "nvidia",
}


def repository_text() -> str:
    """The repository's model.yaml as it is now (bumped or not, a fork's or not)."""
    return (paths.REPO_ROOT / paths.MODEL_YAML).read_text()


def baseline_text(changes: Mapping[str, Any] | None = None) -> str:
    """The repository's model.yaml at BASELINE, then `changes` (key path -> value) applied."""
    return edit(repository_text(), {**BASELINE, **(changes or {})})


def baseline_data(changes: Mapping[str, Any] | None = None) -> dict:
    """baseline_text() as plain data, for tests that edit dicts (and write them with yaml.safe_dump)."""
    return YAML(typ="safe", pure=True).load(baseline_text(changes))


def write_baseline(path: Path, changes: Mapping[str, Any] | None = None) -> Path:
    """Write baseline_text(changes) to path; returns path."""
    path = Path(path)
    path.write_text(baseline_text(changes))
    return path


def edit(text: str, changes: Mapping[str, Any]) -> str:
    """model.yaml text with each key path of `changes` set to its value, every comment, quote and key order kept.

    `model.digests: {}` turns a pinned block back into the unbumped one-line form; non-empty digests are pinned
    by tools.bump's own edit. Fails if anything but the requested keys changed."""
    changes = dict(changes)
    digests = changes.pop("model.digests", None)
    if digests:  # the bump's edit sets version and digests together
        version = changes.pop("model.version", None)
        text = set_version(text, version if version is not None else _load(text)["model"]["version"], digests)
    y = _yaml()
    data = y.load(text)
    if digests is not None and not digests:
        _clear_digests(data["model"])
    for key_path, value in changes.items():
        *parents, last = key_path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    out = io.StringIO()
    y.dump(data, out)
    new = out.getvalue()
    _only_these_changed(text, new, changes, digests)
    return new


def _clear_digests(model: CommentedMap) -> None:
    """`digests:  # comment` + entries (as `make bump` writes them) back to `digests: {}  # comment`, with the
    blank lines that follow the last entry moved back after the comment."""
    current = model.get("digests")
    if current is not None and not current:
        return  # already `{}` (or `{}` with its comment): nothing to restore
    token = model.ca.items.get("digests", [None, None, None, None])[2]
    trailer = current.ca.items.get(list(current)[-1], [None, None, None, None])[2] if current else None
    empty = CommentedMap()
    empty.fa.set_flow_style()
    model["digests"] = empty
    if token is not None:
        token = copy.copy(token)
        token.value = token.value.rstrip("\n") + "\n"
        if trailer is not None and not trailer.value.strip():
            token.value += trailer.value[1:]  # the blank lines; the first newline ended the last entry's line
        model.ca.items["digests"] = [None, None, token, None]


def _load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def _only_these_changed(old: str, new: str, changes: Mapping[str, Any], digests) -> None:
    expected = copy.deepcopy(_load(old))
    if digests is not None and not digests:
        expected["model"]["digests"] = {}
    for key_path, value in changes.items():
        *parents, last = key_path.split(".")
        node = expected
        for key in parents:
            node = node[key]
        node[last] = copy.deepcopy(value)
    after = _load(new)
    assert after == expected, f"editing model.yaml changed more than {sorted(changes)}"
