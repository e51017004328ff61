"""make bump end to end: a temporary clone of this repository with a bare remote, fake exports and reports,
a file:// model store, and a recording `gh` stub on PATH. Every refusal and failure leaves the user's
branch, HEAD, worktree and model.yaml exactly as they were."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.model_yaml import write_baseline
from tools import paths, publish, render
from tools.check import golden
from tools.config import load_config

REPO = Path(__file__).resolve().parents[2]
COPIED = ["Makefile", "requirements.in", "requirements.txt", "requirements-nodeps.txt", ".gitignore",
          "tools", "k8s", paths.GOLDEN_DIR]
GIT_ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "Dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}

GH_STUB = """#!{python}
import json, os, sys
argv = sys.argv[1:]
body = open(argv[argv.index("--body-file") + 1]).read() if "--body-file" in argv else None
with open(os.environ["GH_STUB_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "body": body, "cwd": os.getcwd()}}) + "\\n")
code = int(os.environ.get("GH_STUB_EXIT", "0"))
if code:
    print("GraphQL: Resource not accessible by integration (createPullRequest)", file=sys.stderr)
else:
    print("https://github.com/your-org/tf-serving-gitops/pull/7")
sys.exit(code)
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def make_template(root: Path, store: Path) -> None:
    """The user's repository: this one's files with the baseline model.yaml, a pvc:// store published through
    file://<store>, committed."""
    root.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    # The baseline (v1, nothing pinned), whatever this repository's own model.yaml pins or stores to.
    write_baseline(root / paths.MODEL_YAML,
                   {"store.uri": "pvc://models/resnet", "store.publish_uri": f"file://{store}"})
    render.render(root)
    golden.write(root)  # the golden files of the overlays as this store renders them
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")


class Clone:
    """A copy of the template repository with its own bare remote and `gh` stub; the store is shared, emptied."""

    def __init__(self, template: Path, store: Path, tmp: Path, fakes):
        self.fakes = fakes
        self.tmp, self.root, self.remote = tmp, tmp / "repo", tmp / "remote.git"
        self.store, self.bin, self.gh_log = store, tmp / "bin", tmp / "gh.log"
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(template, self.root, symlinks=True)
        git(tmp, "init", "-q", "--bare", str(self.remote))
        git(self.root, "remote", "add", "origin", str(self.remote))
        git(self.root, "push", "-q", "-u", "origin", "main")
        self.bin.mkdir()
        gh = self.bin / "gh"
        gh.write_text(GH_STUB.format(python=sys.executable))
        gh.chmod(0o755)

    def release(self, version: int = 2, publish_it: bool = True, **kw) -> dict[str, str]:
        found = self.fakes.release(self.root, version=version, **kw)
        if publish_it:
            publish.publish(load_config(self.root / paths.MODEL_YAML), version, log=lambda line: None)
        return found

    def bump(self, *args: str, gh: bool = True, gh_exit: int = 0) -> subprocess.CompletedProcess:
        path = os.environ["PATH"]
        without_gh = ":".join(p for p in path.split(":") if shutil.which("gh", path=p) is None)
        env = {**os.environ, **GIT_ENV, "GH_STUB_LOG": str(self.gh_log), "GH_STUB_EXIT": str(gh_exit),
               "PATH": f"{self.bin}:{path}" if gh else without_gh}
        return subprocess.run([sys.executable, "-m", "tools", "bump", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=300)

    def state(self) -> dict:
        return {"status": git(self.root, "status", "--porcelain", "--untracked-files=all"),
                "branch": git(self.root, "symbolic-ref", "--short", "HEAD"),
                "head": git(self.root, "rev-parse", "HEAD"),
                "branches": git(self.root, "branch", "--list", "--format=%(refname:short)"),
                "model.yaml": (self.root / paths.MODEL_YAML).read_text(),
                "remote": git(self.remote, "for-each-ref", "--format=%(refname)")}

    def gh_calls(self) -> list[dict]:
        if not self.gh_log.exists():
            return []
        return [json.loads(line) for line in self.gh_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once: rendering and the golden files take a few kustomize builds."""
    base = tmp_path_factory.mktemp("bump-template")
    make_template(base / "repo", base / "store")
    return base / "repo", base / "store"


@pytest.fixture
def clone(template, tmp_path, fakes):
    return Clone(*template, tmp_path, fakes)


def error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.slow
def test_bump_branch_commit_push_and_pull_request(clone):
    found = clone.release(2)
    before = clone.state()
    result = clone.bump("2")
    assert result.returncode == 0, result.stderr
    assert "Opened the pull request: https://github.com/your-org/tf-serving-gitops/pull/7" in result.stdout

    # Back on main, untouched; the branch holds one commit on top of it, pushed with upstream set.
    after = clone.state()
    assert (after["branch"], after["head"], after["status"], after["model.yaml"]) == \
        ("main", before["head"], "", before["model.yaml"])
    branch = "model/resnet-v2"
    assert git(clone.root, "rev-parse", f"{branch}~1") == before["head"]
    assert git(clone.remote, "rev-parse", f"refs/heads/{branch}") == git(clone.root, "rev-parse", branch)
    assert git(clone.root, "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}") == f"origin/{branch}"
    message = git(clone.root, "log", "-1", "--format=%B", branch)
    assert message.startswith("model: bump resnet to v2\n")
    assert f"model.digests.channels_first: {found['channels_first']}" in message
    changed = set(git(clone.root, "diff", "--name-only", f"{branch}~1", branch).splitlines())
    assert {rel for rel in changed if not rel.startswith(paths.GOLDEN_DIR)} == {
        "model.yaml", "k8s/overlays/cpu/kustomization.yaml", "k8s/overlays/cpu/model_version_patch.yaml",
        "k8s/overlays/cpu/models.config", "k8s/overlays/gpu/kustomization.yaml",
        "k8s/overlays/gpu/model_version_patch.yaml", "k8s/overlays/gpu/models.config",
        *(f"k8s/overlays/{t}/golden-set/{f}" for t in ("cpu", "gpu") for f in ("expected.json", "images.json"))}
    # The golden files of both overlays follow (the Deployment pins v2; the ConfigMaps got new hash suffixes).
    assert f"{paths.GOLDEN_DIR}/cpu/deployment-tf-serving.yaml" in changed
    assert f"{paths.GOLDEN_DIR}/gpu/deployment-tf-serving.yaml" in changed
    # Both overlays carry the golden set validation recorded for exactly the pinned digests (issue 11).
    for target, layout in (("cpu", "channels_last"), ("gpu", "channels_first")):
        expected = json.loads(git(clone.root, "show", f"{branch}:k8s/overlays/{target}/golden-set/expected.json"))
        assert (expected["version"], expected["layout"], expected["digest"]) == (2, layout, found[layout])
        assert [i["name"] for i in expected["images"]] == ["img-0", "img-1"]
        assert [i["stable"] for i in expected["images"]] == [True, False]
        assert any(rel.startswith(f"{paths.GOLDEN_DIR}/{target}/configmap-tf-serving-golden-set-") for rel in changed)

    # model.yaml: version and digests set, every comment and every other line kept.
    old, new = before["model.yaml"].splitlines(), git(clone.root, "show", f"{branch}:model.yaml").splitlines()
    removed = [line for line in old if line not in new]
    added = [line for line in new if line not in old]
    assert [line.split("#")[0].strip() for line in removed] == ["version: 1", "digests: {}"]
    assert added[0].startswith("  version: 2                    # the version every cluster serves")
    assert added[1].startswith("  digests:                      # sha256 of each layout's SHA256SUMS")
    assert added[2:] == [f"    channels_last: {found['channels_last']}",
                         f"    channels_first: {found['channels_first']}"]

    # The pull request: base main, head the branch, the validation report and the per-overlay summary in the body.
    [call] = clone.gh_calls()
    argv = call["argv"]
    assert argv[:2] == ["pr", "create"]
    assert argv[argv.index("--base") + 1] == "main" and argv[argv.index("--head") + 1] == branch
    assert argv[argv.index("--title") + 1] == "model: resnet v1 -> v2"
    body = call["body"]
    assert "## Validation of resnet v2: passed" in body
    assert "### cpu (`k8s/overlays/cpu`)" in body and "### gpu (`k8s/overlays/gpu`)" in body
    assert "`spec.template.metadata.annotations.tf-serving-gitops/model-version`: `1` → `2`" in body
    assert f"`{found['channels_last']}`" in body and "Rollback: revert this pull request" in body

    # What CI runs passes on the branch: bump ran `python -m tools check` on this very tree before committing it
    # (test_failing_check_is_undone shows a failing check stops it), so running it again here proves nothing more;
    # what it committed is the whole tree it checked: nothing left to render, golden files as built.
    git(clone.root, "switch", "-q", branch)
    assert git(clone.root, "status", "--porcelain", "--untracked-files=all") == ""
    assert render.drift(clone.root) == []
    assert golden.differences(clone.root) == []  # what tests/k8s/test_golden.py compares
    assert load_config(clone.root / paths.MODEL_YAML).model.digests == found


def test_a_report_without_a_golden_set_is_refused(clone):
    found = clone.release(2)
    report_path = paths.validation_report(clone.root / paths.REPORTS_DIR, "resnet", 2, "json")
    report = json.loads(report_path.read_text())
    del report["golden_set"]["layouts"]["channels_first"]
    report_path.write_text(json.dumps(report))
    before = clone.state()
    result = clone.bump("2")
    assert result.returncode == 2 and found
    assert "holds no golden set for the gpu target(s) of resnet v2" in error_line(result)
    assert clone.state() == before


def test_without_gh_prints_how_to_open_the_pull_request(clone):
    clone.release(2)
    result = clone.bump("2", gh=False)
    assert result.returncode == 0, result.stderr
    assert "`gh` is not installed, so open the pull request yourself" in result.stdout
    assert "title: model: resnet v1 -> v2" in result.stdout and "## Validation of resnet v2: passed" in result.stdout
    assert git(clone.remote, "rev-parse", "refs/heads/model/resnet-v2")
    assert clone.gh_calls() == []


def test_dry_run_prints_everything_and_writes_nothing(clone):
    clone.release(2)
    before = clone.state()
    result = clone.bump("2", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-  version: 1 " in out and "+  version: 2 " in out
    assert "+++ b/k8s/overlays/gpu/models.config" in out
    assert "--- commit message ---\nmodel: bump resnet to v2" in out
    assert "--- pull request: model: resnet v1 -> v2 (base main, head model/resnet-v2) ---" in out
    assert "## Validation of resnet v2: passed" in out
    assert clone.state() == before and clone.gh_calls() == []


def assert_refused(clone, result, message: str, before: dict):
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in error_line(result)
    assert clone.state() == before
    assert clone.gh_calls() == []


def test_refuses_dirty_worktree(clone):
    clone.release(2)
    (clone.root / "notes.txt").write_text("wip")
    before = clone.state()
    assert_refused(clone, clone.bump("2"), "the worktree has uncommitted changes (?? notes.txt)", before)


def test_refuses_a_version_not_greater(clone):
    # Version 1 itself is the first pin while nothing is pinned (tests/gitops/test_first_pin.py); 0 never is.
    before = clone.state()
    assert_refused(clone, clone.bump("0"), "model.version is already 1: the new version must be greater (got 0)",
                   before)


def test_refuses_a_missing_export(clone):
    clone.release(2, publish_it=False)
    shutil.rmtree(paths.version_dir(clone.root / paths.MODELS_DIR, "resnet", "channels_first", 2))
    before = clone.state()
    assert_refused(clone, clone.bump("2"), "no channels_first export of resnet v2 at ", before)


@pytest.mark.parametrize("case, message", [
    ("missing", "no validation report for resnet v2"),
    ("failing", "validation of resnet v2 did not pass: parity (channels_first) failed"),
    ("stale", "but the export on disk is sha256:"),
])
def test_refuses_without_a_passing_report(clone, case, message):
    clone.release(2, publish_it=False, passed=case != "failing")
    if case == "missing":
        paths.validation_report(clone.root / paths.REPORTS_DIR, "resnet", 2, "json").unlink()
    if case == "stale":
        clone.fakes.release(clone.root, version=2, salt="re-exported")
        paths.validation_report(clone.root / paths.REPORTS_DIR, "resnet", 2, "json").write_text(json.dumps({
            **json.loads(paths.validation_report(clone.root / paths.REPORTS_DIR, "resnet", 2, "json").read_text()),
            "exports": {"channels_last": {"path": "x", "digest": "sha256:" + "0" * 64}}}))
    before = clone.state()
    assert_refused(clone, clone.bump("2"), message, before)


def test_refuses_a_report_with_checks_that_did_not_run_unless_accepted(clone):
    found = clone.release(2)
    reports, models = clone.root / paths.REPORTS_DIR, clone.root / paths.MODELS_DIR
    clone.fakes.report(reports, "resnet", 2, found, models_dir=models, not_run="unaccepted")
    before = clone.state()
    assert_refused(clone, clone.bump("2"), "validation of resnet v2 has 1 checks that did not run "
                                           "(serving.calls (channels_first)): run `make validate VERSION=2` where "
                                           "they can run, or accept them with `make validate VERSION=2 "
                                           "ARGS=--accept-not-run`", before)
    clone.fakes.report(reports, "resnet", 2, found, models_dir=models, not_run="accepted")
    result = clone.bump("2")
    assert result.returncode == 0, result.stderr


def test_refuses_unpublished_unless_told_it_is_published_elsewhere(clone):
    clone.release(2, publish_it=False)
    before = clone.state()
    assert_refused(clone, clone.bump("2"), "resnet v2 is not published: file://", before)
    assert "pass --no-publish-check if it is published elsewhere" in error_line(clone.bump("2"))
    result = clone.bump("2", "--no-publish-check")
    assert result.returncode == 0, result.stderr
    assert "Published: not checked by the bump (--no-publish-check)" in clone.gh_calls()[0]["body"]


def test_refuses_when_the_branch_exists(clone):
    clone.release(2)
    git(clone.root, "branch", "model/resnet-v2")
    before = clone.state()
    assert_refused(clone, clone.bump("2"), "branch model/resnet-v2 already exists", before)


def assert_undone(clone, result, message: str, before: dict):
    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result)
    assert message in line
    assert f"back on main at {before['head'][:12]} with the worktree as it was, branch model/resnet-v2 deleted" in line
    assert clone.state() == before


def test_push_refused_by_the_remote_is_undone(clone):
    clone.release(2)
    hook = clone.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'model branches need a signed-off commit' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = clone.state()
    assert_undone(clone, clone.bump("2"), "failed while pushing model/resnet-v2 to origin: `git push --quiet -u origin "
                  "model/resnet-v2` failed with exit status 1:", before)
    assert clone.gh_calls() == []


def test_gh_failing_is_undone_including_the_pushed_branch(clone):
    clone.release(2)
    before = clone.state()
    result = clone.bump("2", gh_exit=1)
    assert_undone(clone, result, "failed while opening the pull request with `gh pr create`: ", before)
    assert "GraphQL: Resource not accessible by integration" in error_line(result)
    assert "(also from origin)" in error_line(result)
    assert len(clone.gh_calls()) == 1


def test_failing_check_is_undone(clone):
    clone.release(2)
    # A check that fails only once the overlays pin version 2: register one the way plug-ins do.
    plugin = clone.root / "tools" / "failing_check"
    plugin.mkdir()
    (plugin / "__init__.py").write_text("")
    (plugin / "checks.py").write_text(
        "from tools.check import CheckResult, register\n\n@register\n"
        "def version_two_forbidden(ctx):\n"
        "    yield CheckResult('policy no-v2', ctx.config().model.version != 2, 'v2 is forbidden here')\n")
    git(clone.root, "add", "tools/failing_check")
    git(clone.root, "commit", "-q", "-m", "a policy")
    before = clone.state()
    result = clone.bump("2")
    assert_undone(clone, result,
                  "failed while `python -m tools check` on the bumped tree: check failed: ✗ policy no-v2", before)
    assert clone.gh_calls() == [] and git(clone.remote, "for-each-ref", "--format=%(refname)") == "refs/heads/main"
