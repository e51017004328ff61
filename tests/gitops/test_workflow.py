"""The pull request workflow: actions pinned by commit SHA, the checks it runs, and its model-change detection
(run here in small git repositories)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.model_yaml import baseline_text, edit

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)"
                    r"\s*#\s*(?P<version>v\d+(\.\d+){0,2})\s*$")


def load(path: Path) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text())  # YAML 1.2: `on` stays a string


def steps() -> list[dict]:
    return load(REPO / ".github/workflows/pr.yaml")["jobs"]["check"]["steps"]


def test_there_is_a_pull_request_workflow():
    assert REPO / ".github/workflows/pr.yaml" in WORKFLOWS
    assert "pull_request" in load(REPO / ".github/workflows/pr.yaml")["on"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(path):
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines, "no actions used"
    for line in lines:
        m = PINNED.match(line)
        assert m, f"not `uses: owner/action@<sha> # vX.Y.Z`: {line.strip()}"
        assert re.fullmatch(r"[0-9a-f]{40}", m["ref"]), f"{m['action']} is pinned to {m['ref']!r}, not a commit SHA"


def test_the_steps_set_up_python_cache_the_venv_and_run_check_and_test():
    s = steps()
    uses = [step.get("uses", "").split("@")[0] for step in s]
    assert uses[:4] == ["actions/checkout", "actions/setup-python", "actions/cache", ""]
    assert s[1]["with"]["python-version"] == "3.11"
    cache = s[2]["with"]
    assert cache["path"] == ".venv"
    assert "hashFiles('requirements.txt', 'requirements-nodeps.txt')" in cache["key"]
    assert "steps.python.outputs.python-version" in cache["key"]  # the venv links to that interpreter
    runs = [step.get("run", "") for step in s]
    assert runs.index("make check") < runs.index("make test")
    export = next(step for step in s if step.get("run") == "make export validate")
    upload = next(step for step in s if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert export["if"] == "steps.model.outputs.changed == 'true' && steps.source.outputs.run == 'true'"
    assert upload["with"]["path"] == "build/reports" and "steps.model.outputs.changed == 'true'" in upload["if"]


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_CONFIG_GLOBAL": "/dev/null"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def edit_model_yaml(changes: dict):
    def change(root: Path) -> None:
        path = root / "model.yaml"
        path.write_text(edit(path.read_text(), changes))
    return change


@pytest.mark.parametrize("change, expected", [
    (edit_model_yaml({"model.version": 2}), "true"),
    (edit_model_yaml({"deploy.namespace": "serving"}), "false"),
    (lambda root: root.joinpath("export", "api.py").write_text("# changed\n"), "true"),
    (lambda root: root.joinpath("README.md").write_text("docs\n"), "false"),
], ids=["model.version", "deploy.namespace", "export/", "README.md"])
def test_model_change_detection(tmp_path, change, expected):
    """The step's own script, run in a repository whose HEAD^1 is the base (as in a PR's merge commit)."""
    script = next(step["run"] for step in steps() if step.get("id") == "model")
    root = tmp_path / "repo"
    (root / "export").mkdir(parents=True)
    (root / "model.yaml").write_text(baseline_text())
    (root / "export" / "api.py").write_text("# exporter\n")
    (root / ".venv").symlink_to(REPO / ".venv")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "model.yaml", "export")
    git(root, "commit", "-q", "-m", "base")
    change(root)
    git(root, "add", "-A", ".", ":!.venv")
    git(root, "commit", "-q", "-m", "pull request")
    output = tmp_path / "github_output"
    # As GitHub runs a `run:` step: bash --noprofile --norc -eo pipefail.
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=root,
                            capture_output=True, text=True, env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    assert output.read_text() == f"changed={expected}\n"


# --- issue 10: the pinned digests are re-derived when the model changes; without secrets, skipped visibly. ---
def source_step_run(tmp_path, model_yaml: str, env: dict) -> tuple[subprocess.CompletedProcess, str, str]:
    """The `source` step's script in a copy of tools/ with this model.yaml; returns (result, output, summary)."""
    import shutil

    script = next(step["run"] for step in steps() if step.get("id") == "source")
    root = tmp_path / "repo"
    shutil.copytree(REPO / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "model.yaml").write_text(model_yaml)
    (root / ".venv").symlink_to(REPO / ".venv")
    output, summary, github_env = tmp_path / "output", tmp_path / "summary", tmp_path / "env"
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=root,
                            capture_output=True, text=True,
                            env={**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                                 "GITHUB_ENV": str(github_env), "RUNNER_TEMP": str(tmp_path),
                                 "GCP_KEY": "", "AWS_KEY_ID": "", "FORK": "false", **env})
    read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
    return result, read(output), read(summary)


def test_a_fork_pull_request_without_secrets_skips_the_rederivation_and_says_why(tmp_path):
    own = edit(baseline_text(), {"model.source.model_file": "models/mine.keras", "model.preprocessing": "none"})
    result, output, summary = source_step_run(tmp_path, own, {"FORK": "true"})
    assert result.returncode == 0, result.stderr
    assert output == "run=false\n"
    assert "### Pinned digests NOT re-derived" in summary
    assert "this pull request comes from a fork, and GitHub passes no secrets to it" in summary
    assert "::warning::pinned digests not re-derived" in result.stdout


def test_with_a_store_secret_or_a_seeded_model_the_rederivation_runs(tmp_path):
    own = edit(baseline_text(), {"model.source.model_file": "models/mine.keras", "model.preprocessing": "none"})
    result, output, _ = source_step_run(tmp_path / "a", own, {"GCP_KEY": '{"type": "service_account"}'})
    assert result.returncode == 0 and output == "run=true\n"
    assert (tmp_path / "a" / "gcp-key.json").read_text() == '{"type": "service_account"}'
    # The seeded ResNet needs nothing from the store: it runs on every pull request, forks included.
    result, output, summary = source_step_run(tmp_path / "b", baseline_text(), {"FORK": "true"})
    assert result.returncode == 0 and output == "run=true\n" and summary == ""


def test_the_rederivation_step_runs_make_verify_digests_and_writes_the_summary():
    step = next(step for step in steps() if step.get("name") == "Re-derive the pinned digests from the pinned source")
    assert "make verify-digests ARGS=\"--allow-unpinned\"" in step["run"]
    assert step["if"] == "steps.model.outputs.changed == 'true' && steps.source.outputs.run == 'true'"
    assert "GITHUB_STEP_SUMMARY" in step["run"] and 'exit "$status"' in step["run"]
    names = [s.get("name") for s in steps()]
    assert names.index(step["name"]) < names.index("Export and validate the model")
