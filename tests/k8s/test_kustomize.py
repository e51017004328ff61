"""The kustomize wrapper: which tool it picks, its version rule, and kustomize's own error on failure."""
from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from tools import kustomize, paths, proc
from tools.errors import UserError


def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def recorded():
    commands: list[list[str]] = []
    proc.RECORDERS.append(commands.append)
    yield commands
    proc.RECORDERS.remove(commands.append)


@pytest.mark.parametrize("text, version", [
    ("v5.5.0", (5, 5, 0)),
    ("{Version:kustomize/v4.5.7 GitCommit:56d82a8 BuildDate:2022-08-02T16:35:54Z GoOs:linux GoArch:amd64}", (4, 5, 7)),
    ("Client Version: v1.32.4\nKustomize Version: v5.5.0\n", (5, 5, 0)),
    ("Client Version: v1.24.0\nKustomize Version: v4.5.4\n", (4, 5, 4)),
    ("no version here", None),
])
def test_parse_version(text, version):
    assert kustomize.parse_version(text) == version


def test_neither_kustomize_nor_kubectl_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="neither `kustomize` nor `kubectl` is on PATH"):
        kustomize.build(paths.REPO_ROOT / "k8s/overlays/cpu")


def test_kustomize_older_than_v5_is_refused(tmp_path, monkeypatch):
    fake_tool(tmp_path, "kustomize", 'echo "{Version:kustomize/v4.5.7 GitCommit:56d82a8}"\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"kustomize v4\.5\.7; v5 or newer is needed"):
        kustomize.find()


def test_kubectl_with_an_old_embedded_kustomize_is_refused(tmp_path, monkeypatch):
    fake_tool(tmp_path, "kubectl", 'printf "Client Version: v1.24.0\\nKustomize Version: v4.5.4\\n"\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"`kubectl kustomize` is kustomize v4\.5\.4"):
        kustomize.find()


def test_the_kustomize_binary_is_preferred_over_kubectl(tmp_path, monkeypatch, recorded):
    fake_tool(tmp_path, "kustomize", 'if [ "$1" = version ]; then echo v5.4.3; exit; fi\n'
                                     'printf "apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: x}\\n---\\n"\n')
    fake_tool(tmp_path, "kubectl", "echo kubectl must not run >&2; exit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    objects = kustomize.build(paths.REPO_ROOT / "k8s/overlays/cpu")
    assert objects == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]
    assert recorded[-1] == ["kustomize", "build", str(paths.REPO_ROOT / "k8s/overlays/cpu")]
    assert kustomize.find().description == "kustomize v5.4.3"


@pytest.mark.skipif(not shutil.which("kubectl") and not shutil.which("kustomize"), reason="needs kustomize")
def test_a_failed_build_shows_kustomizes_own_message(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - no-such-file.yaml\n")
    with pytest.raises(UserError) as caught:
        kustomize.build(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{' '.join(kustomize.find().build_argv)} {tmp_path} failed: ")
    assert "no-such-file.yaml" in message


def test_a_folder_without_kustomization_is_refused_before_running_anything(tmp_path, recorded):
    with pytest.raises(UserError, match="no kustomization.yaml"):
        kustomize.build(tmp_path)
    assert recorded == []


def test_build_returns_the_objects_of_the_real_overlay(built):
    kinds = {o["kind"] for o in built["cpu"]}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
            "ServiceAccount", "ConfigMap", "Namespace"} <= kinds
    assert all(isinstance(o, dict) for o in built["cpu"])


@pytest.mark.skipif(not shutil.which("kubectl") and not shutil.which("kustomize"), reason="needs kustomize")
def test_the_tool_is_looked_up_again_when_path_changes(tmp_path, monkeypatch):
    assert kustomize.find().version >= (5, 0, 0)  # found on the real PATH, and cached for it
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="neither"):
        kustomize.find()
