"""The built-in checks of `make check`: config, render drift, kustomize builds, schemas, policies."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tools import paths, render
from tools.check import CheckContext, CheckResult, register
from tools.check.policies import POLICIES, Overlay
from tools.check.schema import KUBERNETES_VERSIONS, validate_objects
from tools.errors import UserError


def _builds(ctx: CheckContext) -> list[tuple[str, list[dict]]]:
    """Successful builds only: a failed one is reported by check_builds."""
    built = []
    for relpath in ctx.build_dirs():
        try:
            built.append((relpath, ctx.build(relpath)))
        except UserError:
            pass
    return built


@register
def check_config(ctx: CheckContext) -> Iterable[CheckResult]:
    config = ctx.config()
    render.check_cluster_store(config)
    yield CheckResult(f"config: {config.path.name} is valid", True,
                      f"model {config.model.name} version {config.model.version}; targets {', '.join(config.targets)}")


@register
def check_render_drift(ctx: CheckContext) -> Iterable[CheckResult]:
    differing = render.drift_details(ctx.repo_root, ctx.config_path)
    name = "render: committed files match a fresh render of model.yaml"
    if not differing:
        yield CheckResult(name, True, "rendered files are what `make render` writes")
        return
    lines = [f"{rel}: {state}" for rel, state in differing]
    lines.append("run `make render` and commit the result (rendered files are never edited by hand)")
    yield CheckResult(name, False, "\n".join(lines))


@register
def check_builds(ctx: CheckContext) -> Iterable[CheckResult]:
    dirs = ctx.build_dirs()
    if not dirs:
        yield CheckResult("kustomize build", False, f"no kustomization under {paths.OVERLAYS_DIR}/: run `make render`")
        return
    targets = set(ctx.config().targets)
    found = {Path(d).name for d in ctx.overlay_dirs()}
    for missing in sorted(targets - found):
        yield CheckResult(f"kustomize build {paths.OVERLAYS_DIR}/{missing}", False,
                          "model.yaml has this target but there is no overlay: run `make render`")
    for relpath in dirs:
        try:
            objects = ctx.build(relpath)
        except UserError as exc:
            yield CheckResult(f"kustomize build {relpath}", False, str(exc))
            continue
        kinds = sorted({o.get("kind", "?") for o in objects})
        yield CheckResult(f"kustomize build {relpath}", True, f"{len(objects)} objects: {', '.join(kinds)}")


@register
def check_schemas(ctx: CheckContext) -> Iterable[CheckResult]:
    span = f"Kubernetes {KUBERNETES_VERSIONS[0]}-{KUBERNETES_VERSIONS[-1]}, strict"
    for relpath, objects in _builds(ctx):
        report = validate_objects(objects)
        detail = [f"{report.validated} objects valid on {span}"]
        if report.skipped:
            detail.append(f"no Kubernetes schema (custom resources, not validated here): {', '.join(report.skipped)}")
        yield CheckResult(f"schema {relpath} ({span})", not report.errors,
                          "\n".join(report.errors) if report.errors else "; ".join(detail))


@register
def check_policies(ctx: CheckContext) -> Iterable[CheckResult]:
    config = ctx.config()
    overlays = [Overlay(Path(relpath).name, objects, config)
                for relpath, objects in _builds(ctx) if relpath.startswith(paths.OVERLAYS_DIR + "/")]
    for name, fn in POLICIES.items():
        violations = [f"{o.name}: {v}" for o in overlays for v in fn(o)]
        summary = (fn.__doc__ or "").strip().splitlines()[0]
        yield CheckResult(f"policy {name}", not violations,
                          "\n".join(violations) if violations else f"{summary} [{', '.join(o.name for o in overlays)}]")
