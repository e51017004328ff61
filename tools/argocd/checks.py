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
