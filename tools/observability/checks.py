"""`make check` plug-in: the rendered alert rules of every overlay through `promtool check rules` (Debian's
prometheus package; `make promtool` installs it). The CRD schemas are checked with the others (tools/check/schema.py)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import yaml

from tools import proc
from tools.check import CheckContext, CheckResult, register
from tools.errors import UserError

PROMTOOL = "promtool"
MISSING_PROMTOOL = ("promtool not found: install Debian's prometheus package (`make promtool`, or "
                    "apt-get install prometheus)")


def promtool() -> str:
    """The promtool binary, or a UserError naming what to install."""
    found = shutil.which(PROMTOOL)
    if not found:
        raise UserError(MISSING_PROMTOOL)
    return found


def rule_groups(objects: list[dict]) -> list[dict]:
    """Every PrometheusRule's groups, as a Prometheus rule file holds them."""
    return [g for o in objects if o.get("kind") == "PrometheusRule" for g in (o.get("spec") or {}).get("groups") or []]


def check_rule_file(groups: list[dict]) -> str:
    """`promtool check rules` on these groups; returns its output, raises UserError with it on failure."""
    with tempfile.TemporaryDirectory(prefix="rules-") as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        return proc.run([promtool(), "check", "rules", str(path)]).stdout


@register
def check_observability(ctx: CheckContext) -> Iterable[CheckResult]:
    for relpath in ctx.overlay_dirs():
        try:
            objects = ctx.build(relpath)
        except UserError:
            continue  # check_builds reports it
        groups = rule_groups(objects)
        if groups:
            name = f"promtool check rules {relpath}"
            try:
                check_rule_file(groups)
            except UserError as exc:
                yield CheckResult(name, False, str(exc))
                continue
            yield CheckResult(name, True, f"{sum(len(g.get('rules') or []) for g in groups)} rules")
