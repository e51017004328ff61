"""`make check` plug-in for canary targets: the analysis queries parse and name real series, and the Rollout is
wired to what the overlay builds (its Deployment, Services and AnalysisTemplates). The Rollout and
AnalysisTemplate schemas are checked with the others (tools/check/schema.py, tools/rollout/crds.py)."""
from __future__ import annotations

from typing import Any, Iterable

from tools import paths
from tools.check import CheckContext, CheckResult, register
from tools.errors import UserError
from tools.render import names
from tools.rollout import promql


def wiring_problems(objects: list[dict[str, Any]], canary: bool) -> list[str]:
    """A canary overlay: one Rollout that references the serving Deployment, Services and templates it names."""
    def names_of(kind: str) -> set[str]:
        return {(o.get("metadata") or {}).get("name") for o in objects if o.get("kind") == kind}

    rollouts = [o for o in objects if o.get("kind") == "Rollout"]
    if not canary:
        return [f"Rollout/{o['metadata']['name']}: the target's rollout.strategy is rolling" for o in rollouts]
    if len(rollouts) != 1:
        return [f"rollout.strategy canary wants exactly one Rollout, found {len(rollouts)}"]
    spec = rollouts[0].get("spec") or {}
    out = []
    ref = spec.get("workloadRef") or {}
    if (ref.get("kind"), ref.get("name")) != ("Deployment", names.DEPLOYMENT) or names.DEPLOYMENT not in names_of("Deployment"):
        out.append(f"Rollout/{names.ROLLOUT}: workloadRef must name the Deployment {names.DEPLOYMENT} of this overlay")
    if "template" in spec:
        out.append(f"Rollout/{names.ROLLOUT}: has a pod template beside workloadRef (the Deployment holds it)")
    canary_spec = (spec.get("strategy") or {}).get("canary") or {}
    for key in ("canaryService", "stableService"):
        if canary_spec.get(key) not in names_of("Service"):
            out.append(f"Rollout/{names.ROLLOUT}: {key} {canary_spec.get(key)!r} is not a Service of this overlay")
    used = [t.get("templateName") for t in (canary_spec.get("analysis") or {}).get("templates") or []]
    used += [t.get("templateName") for s in canary_spec.get("steps") or [] for t in (s.get("analysis") or {}).get("templates") or []]
    for name in used:
        if name not in names_of("AnalysisTemplate"):
            out.append(f"Rollout/{names.ROLLOUT}: analysis template {name!r} is not in this overlay")
    if not used:
        out.append(f"Rollout/{names.ROLLOUT}: runs no analysis")
    return out


@register
def check_canary(ctx: CheckContext) -> Iterable[CheckResult]:
    config = ctx.config()
    for name, target in config.targets.items():
        relpath = f"{paths.OVERLAYS_DIR}/{name}"
        try:
            objects = ctx.build(relpath)
        except UserError:
            continue  # check_builds reports it
        canary = target.rollout is not None and target.rollout.strategy == "canary"
        wiring = wiring_problems(objects, canary)
        if canary or wiring:
            yield CheckResult(f"canary: {relpath} Rollout wired to its Deployment, Services, analyses", not wiring,
                              "\n".join(wiring) or "workloadRef, stable/canary Services, analysis templates")
        found, count = promql.problems(objects)
        if count or found:
            yield CheckResult(f"canary: {relpath} analysis queries parse (promtool) and name TF Serving series",
                              not found, "\n".join(found) or f"{count} queries")
