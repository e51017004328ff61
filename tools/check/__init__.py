"""Everything `make check` verifies before a change may merge: one ✓/✗ line per check.

    python -m tools check                   # exit 1 if any check fails
    run_checks(repo_root) -> [CheckResult(name, passed, detail), ...]

Built-in checks, in order: model.yaml loads; committed rendered files equal a fresh render (drift); kustomize
builds every overlay (and k8s/argocd when it has a kustomization.yaml); every built object is valid on several
Kubernetes versions, strictly (tools/check/schema.py); the policies of tools/check/policies.py hold on every
overlay.

Adding a check (other tools do this): write a function `(ctx: CheckContext) -> Iterable[CheckResult]` in a
module `tools/<tool>/checks.py` and decorate it with `@tools.check.register`. run_checks imports every
`tools/*/checks.py` it finds, so nothing else needs editing. A check may raise UserError: it then shows as one
failed line named after the function. Use `ctx.config()` and `ctx.build(relpath)` (cached kustomize builds)
rather than loading or building again.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tools import config as config_mod
from tools import kustomize, paths
from tools.errors import UserError


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""  # one line when passed; the problems, one per line, when failed


@dataclass
class CheckContext:
    """What checks share: the repository, its config, and kustomize builds done once."""

    repo_root: Path
    config_path: Path | None = None
    _config: Any = None
    _builds: dict[str, Any] = field(default_factory=dict)

    def config(self) -> config_mod.Config:
        if self._config is None:
            try:
                self._config = config_mod.load_config(self.config_path or self.repo_root / paths.MODEL_YAML)
            except UserError as exc:
                self._config = exc
        if isinstance(self._config, UserError):
            raise self._config
        return self._config

    def overlay_dirs(self) -> list[str]:
        """k8s/overlays/<name> for every folder there with a kustomization.yaml."""
        root = self.repo_root / paths.OVERLAYS_DIR
        if not root.is_dir():
            return []
        return [f"{paths.OVERLAYS_DIR}/{p.name}" for p in sorted(root.iterdir())
                if (p / paths.KUSTOMIZATION_FILE).is_file()]

    def build_dirs(self) -> list[str]:
        """Every kustomization Argo CD applies: the overlays, and k8s/argocd once it has a kustomization.yaml."""
        dirs = self.overlay_dirs()
        if (self.repo_root / paths.ARGOCD_DIR / paths.KUSTOMIZATION_FILE).is_file():
            dirs.append(paths.ARGOCD_DIR)
        return dirs

    def build(self, relpath: str) -> list[dict[str, Any]]:
        """kustomize build of repo_root/relpath, done once; raises UserError with kustomize's message."""
        if relpath not in self._builds:
            try:
                self._builds[relpath] = kustomize.build(self.repo_root / relpath)
            except UserError as exc:
                self._builds[relpath] = exc
        result = self._builds[relpath]
        if isinstance(result, UserError):
            raise result
        return result


Check = Callable[[CheckContext], Iterable[CheckResult]]
CHECKS: list[Check] = []


def register(fn: Check) -> Check:
    """Decorator: add a check to `make check` (runs after the built-in ones, in import order)."""
    if fn not in CHECKS:
        CHECKS.append(fn)
    return fn


def _discover(repo_root: Path) -> list[CheckResult]:
    """Import every tools/<tool>/checks.py so its @register calls run; report modules that fail to import."""
    problems = []
    for module_file in sorted((Path(__file__).resolve().parent.parent).glob("*/checks.py")):
        module = f"tools.{module_file.parent.name}.checks"
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken plug-in must fail the check run, not crash it
            problems.append(CheckResult(f"import {module}", False, f"{type(exc).__name__}: {exc}"))
    return problems


def run_checks(repo_root: Path | str = paths.REPO_ROOT, config_path: Path | str | None = None) -> list[CheckResult]:
    """Run every registered check; never raises for a failing check, only reports it."""
    ctx = CheckContext(Path(repo_root), Path(config_path) if config_path else None)
    results = _discover(ctx.repo_root)
    for check in list(CHECKS):
        try:
            results.extend(check(ctx))
        except UserError as exc:
            name = getattr(check, "check_name", check.__name__.replace("_", " "))
            results.append(CheckResult(name, False, str(exc)))
    return results


# The built-in checks register first, so they always run (and print) before any plug-in's.
from tools.check import builtin  # noqa: E402,F401
from tools.check import image_pins  # noqa: E402,F401  (issue 12: digest pins or a waiver)
