"""`make check` plug-in: the Argo CD objects against the schema of their fields and the settings they promise."""
from __future__ import annotations

from typing import Iterable

from tools import argocd, paths
from tools.check import CheckContext, CheckResult, register


@register
def check_argocd(ctx: CheckContext) -> Iterable[CheckResult]:
    config = ctx.config()
    built = {target: ctx.build(f"{paths.OVERLAYS_DIR}/{target}") for target in config.targets}
    problems = argocd.check(ctx.repo_root, config, built)
    name = f"argocd: {paths.ARGOCD_DIR} objects match their schema and sync settings"
    yield CheckResult(name, not problems, "\n".join(problems) or
                      f"AppProject, ApplicationSet and {len(config.targets)} Applications")


# --- issue 12: the Argo CD objects against the CRDs of the oldest and newest supported release; HPA sync wave ---
@register
def check_argocd_crds(ctx: CheckContext) -> Iterable[CheckResult]:
    from tools.argocd import crds, load_objects

    objects = [obj for _, obj in load_objects(ctx.repo_root)]
    problems = [p for release in crds.SUPPORTED for obj in objects for p in crds.crd_problems(obj, release)]
    name = f"argocd: {paths.ARGOCD_DIR} objects valid against the CRDs of Argo CD {' and '.join(crds.SUPPORTED)}"
    yield CheckResult(name, bool(objects) and not problems, "\n".join(problems) or
                      f"{len(objects)} objects; supported range {crds.SUPPORTED[0]} .. {crds.SUPPORTED[-1]}")


@register
def check_hpa_sync_wave(ctx: CheckContext) -> Iterable[CheckResult]:
    from tools.argocd.hpa_health import wave_problems

    config = ctx.config()
    problems = [f"{target}: {p}" for target in config.targets
                for p in wave_problems(ctx.build(f"{paths.OVERLAYS_DIR}/{target}"))]
    yield CheckResult("argocd: every HPA syncs after the workload it scales (first sync on Argo CD >= 3.5)",
                      not problems, "\n".join(problems) or "HPA in a later sync wave in every overlay")
