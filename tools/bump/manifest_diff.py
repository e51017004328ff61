"""What a change does to the built manifests of an overlay, summarised for a pull request body.

Objects are matched by kind and name; a generated ConfigMap or Secret whose content hash suffix changed is
matched by its name without the suffix, so a new model version reads as "changed" rather than one object
removed and another added. Fields are compared leaf by leaf; list items that have a `name` are matched by it.
"""
from __future__ import annotations

import re
from typing import Any

# kustomize's generator suffix: "-" and 10 characters of the content hash.
_HASH_SUFFIX = re.compile(r"^(?P<base>.+)-[a-z0-9]{10}$")
_HASHED_KINDS = ("ConfigMap", "Secret")
MAX_VALUE = 90


def _key(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _stable_name(obj: dict) -> tuple[str, str]:
    kind, name = _key(obj)
    m = _HASH_SUFFIX.match(name) if kind in _HASHED_KINDS else None
    return kind, m["base"] if m else name


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"spec.template.spec.containers[tf-serving].image": "...", ...}"""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            label = item["name"] if isinstance(item, dict) and isinstance(item.get("name"), str) else str(i)
            out.update(flatten(item, f"{prefix}[{label}]"))
        return out or {prefix: []}
    return {prefix: value}


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if value == "":
        return "(empty)"
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _field_change(path: str, old: Any, new: Any) -> str:
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        before, after = old.splitlines(), new.splitlines()
        removed = [line.strip() for line in before if line not in after]
        added = [line.strip() for line in after if line not in before]
        if any(not x.startswith("#") for x in removed + added):  # comments only when nothing else changed
            removed = [x for x in removed if not x.startswith("#")]
            added = [x for x in added if not x.startswith("#")]
        return f"`{path}`: " + "; ".join([f"`- {_show(x)}`" for x in removed] + [f"`+ {_show(x)}`" for x in added])
    return f"`{path}`: `{_show(old)}` → `{_show(new)}`"


def _follows_rename(old: Any, new: Any, renamed: set[tuple[str, str]]) -> bool:
    """A reference that only moves from one generated name to its successor (kustomize rewrote it)."""
    return any(old == a and new == b for a, b in renamed)


def summarize(before: list[dict], after: list[dict]) -> list[str]:
    """Markdown bullet lines, one per added, removed or changed object (empty: nothing changes)."""
    old = {_stable_name(o): o for o in before}
    new = {_stable_name(o): o for o in after}
    renamed = {(old[k]["metadata"]["name"], new[k]["metadata"]["name"]) for k in set(old) & set(new)
               if old[k]["metadata"]["name"] != new[k]["metadata"]["name"]}
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"- added `{key[0]}/{new[key]['metadata']['name']}`")
            continue
        if key not in new:
            lines.append(f"- removed `{key[0]}/{old[key]['metadata']['name']}`")
            continue
        a, b = flatten(old[key]), flatten(new[key])
        differing = [p for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p) and p != "metadata.name"]
        changes = [_field_change(p, a.get(p), b.get(p)) for p in differing
                   if not _follows_rename(a.get(p), b.get(p), renamed)]
        if len(changes) < len(differing):
            changes.append("points to the renamed ConfigMaps")
        was, now = old[key]["metadata"]["name"], new[key]["metadata"]["name"]
        if not changes and was == now:
            continue
        title = f"`{key[0]}/{was}`" + (f" → `{now}`" if was != now else "")
        lines.append(f"- {title}: " + ("; ".join(changes) if changes else "renamed"))
    return lines
