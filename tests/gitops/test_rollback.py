"""make rollback end to end, as make bump is tested (tests/gitops/test_bump.py): a temporary clone of this repository
with a bare remote and a recording `gh` stub on PATH. The pull request reverts the last bump; every refusal and
failure leaves the branch, HEAD, worktree, local branches and the remote exactly as they were."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.gitops.test_bump import GIT_ENV, Clone, error_line, git, make_template  # noqa: F401
from tools import paths
from tools.config import load_config
from tools.rollout import rollback as rollback_lib


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    base = tmp_path_factory.mktemp("rollback-template")
    make_template(base / "repo", base / "store")
    return base / "repo", base / "store"


@pytest.fixture
def clone(template, tmp_path, fakes):
    return Clone(*template, tmp_path, fakes)


def run_rollback(clone: Clone, *args: str, gh_exit: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "GH_STUB_LOG": str(clone.gh_log), "GH_STUB_EXIT": str(gh_exit),
           "PATH": f"{clone.bin}:{os.environ['PATH']}", "KUBECONFIG": str(clone.tmp / "no-kubeconfig")}
    return subprocess.run([sys.executable, "-m", "tools", "rollback", *args], cwd=clone.root, env=env,
                          capture_output=True, text=True, timeout=300)


def set_version(clone: Clone, version: int, subject: str, push: bool = True, comment: str | None = None) -> str:
    """A commit that changes model.version in model.yaml only (the refusal and undo tests need no rendering)."""
    path = clone.root / paths.MODEL_YAML
    text = re.sub(r"^(  version: )\d+", rf"\g<1>{version}", path.read_text(), count=1, flags=re.M)
    if comment is not None:
        text = re.sub(r"^(  version: \d+ +)#.*$", rf"\g<1># {comment}", text, count=1, flags=re.M)
    path.write_text(text)
    git(clone.root, "commit", "-qam", subject)
    if push:
        git(clone.root, "push", "-q", "origin", "main")
    return git(clone.root, "rev-parse", "HEAD")


@pytest.mark.slow
def test_rollback_reverts_the_merged_bump_in_a_pull_request(clone):
    clone.release(2)
    assert clone.bump("2").returncode == 0
    v1 = git(clone.root, "rev-parse", "HEAD")
    # The bump's pull request merged with a merge commit, as GitHub's default does.
    git(clone.root, "merge", "-q", "--no-ff", "-m", "Merge pull request #7 from your-org/model/resnet-v2",
        "model/resnet-v2")
    git(clone.root, "push", "-q", "origin", "main")
    merge = git(clone.root, "rev-parse", "HEAD")
    before = clone.state()

    result = run_rollback(clone)
    assert result.returncode == 0, result.stderr
    assert "Opened the pull request: https://github.com/your-org/tf-serving-gitops/pull/7" in result.stdout
    after = clone.state()
    assert (after["branch"], after["head"], after["status"]) == ("main", merge, "")
    branch = "rollback/resnet-v2"
    assert git(clone.root, "rev-parse", f"{branch}~1") == merge
    assert git(clone.remote, "rev-parse", f"refs/heads/{branch}") == git(clone.root, "rev-parse", branch)
    # The branch's tree is v1's again: every rendered file, golden file and model.yaml.
    assert git(clone.root, "diff", "--stat", v1, branch) == ""
    message = git(clone.root, "log", "-1", "--format=%B", branch)
    assert message.startswith("model: roll back resnet v2 -> v1\n") and f"This reverts commit {merge}" in message
    [call] = [c for c in clone.gh_calls() if "roll back" in " ".join(c["argv"])]
    argv = call["argv"]
    assert argv[argv.index("--title") + 1] == "model: roll back resnet v2 -> v1"
    assert argv[argv.index("--base") + 1] == "main" and argv[argv.index("--head") + 1] == branch
    assert f"Reverts {merge[:12]}" in call["body"] and "a merge: reverted against its first parent" in call["body"]
    # No cluster access here: the body says so instead of quoting evidence.
    assert "- `make status` could not read the clusters: no kubeconfig contexts found" in call["body"]
    assert load_config(clone.root / paths.MODEL_YAML).model.version == 2  # main still says v2 until the merge
    assert before["remote"] != after["remote"]


def test_rollback_refuses_a_dirty_worktree(clone):
    set_version(clone, 2, "model: bump resnet to v2")
    (clone.root / "notes.txt").write_text("work in progress")
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2
    assert error_line(result).startswith("error: the worktree has uncommitted changes (?? notes.txt)")
    assert clone.state() == before and clone.gh_calls() == []


def test_nothing_to_roll_back(clone):
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2
    assert error_line(result) == ("error: nothing to roll back: no commit on main changes model.version "
                                  "(resnet has been v1 throughout)")
    assert clone.state() == before


def test_a_rollback_is_not_rolled_back(clone):
    set_version(clone, 2, "model: bump resnet to v2")
    set_version(clone, 1, 'Revert "model: bump resnet to v2"')
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2 and "is itself a rollback to v1" in error_line(result)
    assert clone.state() == before


def test_an_existing_rollback_branch_is_refused(clone):
    set_version(clone, 2, "model: bump resnet to v2")
    git(clone.root, "branch", "rollback/resnet-v2")
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2 and "branch rollback/resnet-v2 already exists" in error_line(result)
    assert clone.state() == before


def test_a_failing_check_is_undone(clone):
    # The bump, then a commit that renders its overlays: reverting only the bump leaves v2 manifests behind.
    from tools import render

    set_version(clone, 2, "model: bump resnet to v2", push=False)
    render.render(clone.root)
    git(clone.root, "add", "-A")
    git(clone.root, "commit", "-qm", "render v2")
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2
    line = error_line(result)
    assert "rollback of v2 failed while `python -m tools check` on the reverted tree: check failed: ✗ render" in line
    assert "nothing was kept: back on main" in line and "branch rollback/resnet-v2 deleted" in line
    assert clone.state() == before and clone.gh_calls() == []


def test_a_failing_gh_is_undone_on_the_remote_too(clone):
    set_version(clone, 2, "model: bump resnet to v2")
    before = clone.state()
    result = run_rollback(clone, "--no-evidence", gh_exit=1)
    assert result.returncode == 2
    line = error_line(result)
    assert "failed while opening the pull request with `gh pr create`" in line and "(also from origin)" in line
    assert clone.state() == before
    assert len(clone.gh_calls()) == 1


def test_a_conflicting_revert_is_undone(clone):
    set_version(clone, 2, "model: bump resnet to v2")
    set_version(clone, 2, "model.yaml: reword a comment", comment="served everywhere")
    before = clone.state()
    result = run_rollback(clone, "--no-evidence")
    assert result.returncode == 2
    assert "the revert conflicts with later commits in model.yaml" in error_line(result)
    assert clone.state() == before


def test_dry_run_and_the_body_quote_the_evidence(clone, capsys):
    bump = set_version(clone, 2, "model: bump resnet to v2")
    before = clone.state()
    evidence = ["resnet-gke-gpu (https://35.204.1.12): Rollout Degraded (aborted): RolloutAborted: ..."]
    r = rollback_lib.rollback(clone.root, dry_run=True, evidence=evidence)
    assert (r.commit, r.from_version, r.to_version, r.merge) == (bump, 2, 1, False)
    out = capsys.readouterr().out
    assert "--dry-run: nothing is written" in out and f"- {evidence[0]}" in out
    assert clone.state() == before
