"""Build a kustomization with the real kustomize and return its objects.

    from tools import kustomize
    objects = kustomize.build("k8s/overlays/cpu")     # -> list of dicts, in kustomize's output order

Uses the `kustomize` binary when it is on PATH, otherwise `kubectl kustomize` (kubectl embeds kustomize);
either must be kustomize v5 or newer (components, `labels:`, and the output this repository's golden files
record). Every call goes through tools.proc.run; a failed build raises UserError carrying kustomize's own
message.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import proc
from tools.errors import UserError

MIN_MAJOR = 5
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Kustomize:
    build_argv: tuple[str, ...]  # followed by the directory
    version: tuple[int, int, int]
    description: str  # "kustomize v5.5.0" or "kubectl kustomize (kustomize v5.5.0)"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The kustomize version in `kustomize version` or `kubectl version --client` output.

    Handles "v5.5.0", kustomize 4's "{Version:kustomize/v4.5.7 GitCommit:...}" and kubectl's
    "Kustomize Version: v5.5.0" line (kubectl also prints its own, different, client version first).
    """
    lines = text.splitlines()
    for line in [line for line in lines if "kustomize" in line.lower()] or lines:
        m = _VERSION_RE.search(line)
        if m:
            return int(m[1]), int(m[2]), int(m[3])
    return None


def _check_version(version: tuple[int, int, int] | None, what: str, output: str) -> tuple[int, int, int]:
    if version is None:
        raise UserError(f"cannot tell which kustomize {what} is (it printed {output.strip()[:80]!r}); "
                        f"kustomize v{MIN_MAJOR} or newer is needed")
    if version[0] < MIN_MAJOR:
        raise UserError(f"{what} is kustomize v{'.'.join(map(str, version))}; v{MIN_MAJOR} or newer is needed "
                        "(install kustomize 5, or a kubectl of 1.27 or newer)")
    return version


@functools.lru_cache(maxsize=None)
def _find(path_env: str | None) -> Kustomize:
    # path_env is only the cache key: a test that changes PATH gets a fresh lookup.
    if shutil.which("kustomize"):
        out = proc.run(["kustomize", "version"], echo=False).stdout
        version = _check_version(parse_version(out), "`kustomize`", out)
        return Kustomize(("kustomize", "build"), version, f"kustomize v{'.'.join(map(str, version))}")
    if shutil.which("kubectl"):
        out = proc.run(["kubectl", "version", "--client"], echo=False).stdout
        version = _check_version(parse_version(out), "`kubectl kustomize`", out)
        return Kustomize(("kubectl", "kustomize"), version,
                         f"kubectl kustomize (kustomize v{'.'.join(map(str, version))})")
    raise UserError("neither `kustomize` nor `kubectl` is on PATH: install kustomize v5 or newer "
                    "(https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl 1.27+")


def find() -> Kustomize:
    """The kustomize this machine has (cached per PATH); UserError if none, or an older one than v5."""
    return _find(os.environ.get("PATH"))


def build(path: str | Path) -> list[dict[str, Any]]:
    """`kustomize build path`, parsed: one dict per object, kustomize's order, empty documents dropped."""
    path = Path(path)
    if not (path / "kustomization.yaml").is_file():
        raise UserError(f"{path}: no kustomization.yaml to build")
    tool = find()
    try:
        result = proc.run([*tool.build_argv, str(path)])
    except proc.CommandError as exc:
        message = (exc.stderr or exc.stdout).strip() or f"exit status {exc.returncode}"
        raise UserError(f"{' '.join(tool.build_argv)} {path} failed: {message}") from None
    try:
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    except yaml.YAMLError as exc:
        raise UserError(f"{' '.join(tool.build_argv)} {path} printed output that is not YAML: {exc}") from None
