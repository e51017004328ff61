"""Open the pull request that reverts the last model bump, so git follows what the clusters did.

    make rollback [ARGS="--dry-run"]
    python -m tools rollback [--dry-run] [--remote origin] [--no-evidence] [--kubeconfig PATH] [--context CTX]

The last bump is the newest commit on the first-parent history of the current branch whose model.yaml has another
model.version than its parent's (the merge commit of the bump's pull request, a squashed one, or the bump commit
itself). It is reverted (`git revert`, `-m 1` for a merge) on branch rollback/<name>-v<version>, the result must pass
`python -m tools check` (what CI runs), and the branch is pushed with -u and proposed with `gh pr create`. The body
says which versions, which commit, and, when `make status` can read the clusters, the failed canary analyses
(tools/rollout/status.py); without cluster access it says so.

Refuses, naming the problem and changing nothing, unless: the worktree is clean and on a branch; a version change
exists to revert; it is not itself a rollback; branch rollback/<name>-v<version> does not exist (locally or on the
remote). If any step fails (revert conflict, check, push, gh), everything is undone as `make bump` does: the branch
is deleted (also on the remote if pushed), HEAD and the worktree are what they were. The branch, check, push, pull
request and undo steps are tools/pull_request.py's, shared with `make bump`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from tools import paths
from tools.pull_request import Proposal, current_branch, git, require_clean, run_check
from tools.config import load_config
from tools.errors import UserError

BRANCH_PREFIX = "rollback/"


@dataclass
class Rollback:
    repo_root: Path
    name: str
    base: str
    head: str
    commit: str  # the bump being reverted
    subject: str
    merge: bool
    from_version: int  # what the bump set (served now, or being rolled out)
    to_version: int  # what it replaced, and what the clusters go back to
    branch: str
    evidence: list[str] = field(default_factory=list)
    title: str = ""
    body: str = ""
    message: str = ""


def _version_at(root: Path, rev: str) -> int | None:
    result = git(root, "show", f"{rev}:{paths.MODEL_YAML}", check=False)
    if result.returncode != 0:
        return None
    try:
        version = ((yaml.safe_load(result.stdout) or {}).get("model") or {}).get("version")
    except yaml.YAMLError:
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def last_bump(root: Path) -> tuple[str, int, int, str, bool] | None:
    """(commit, version before, version after, subject, is a merge) of the newest model.version change, or None."""
    commits = git(root, "log", "--first-parent", "--format=%H", "--", paths.MODEL_YAML).stdout.split()
    for commit in commits:
        parents = git(root, "rev-list", "--parents", "-n", "1", commit).stdout.split()[1:]
        after = _version_at(root, commit)
        before = _version_at(root, parents[0]) if parents else None
        if after is not None and before is not None and after != before:
            subject = git(root, "log", "-1", "--format=%s", commit).stdout.strip()
            return commit, before, after, subject, len(parents) > 1
    return None


def plan(repo_root: Path | str = paths.REPO_ROOT, *, remote: str = "origin",
         evidence: list[str] | None = None) -> Rollback:
    root = Path(repo_root)
    base = current_branch(root, "roll back")
    require_clean(root, "the rollback commits only the revert and must be able to undo it")
    config = load_config(root / paths.MODEL_YAML)
    name = config.model.name
    found = last_bump(root)
    if found is None:
        raise UserError(f"nothing to roll back: no commit on {base} changes model.version "
                        f"({name} has been v{config.model.version} throughout)")
    commit, before, after, subject, merge = found
    if subject.startswith('Revert "') or subject.startswith("model: roll back"):
        raise UserError(f"nothing to roll back: the last version change ({commit[:12]} {subject!r}) is itself a "
                        f"rollback to v{after}; to move on, `make bump VERSION=N` with a fixed version")
    branch = f"{BRANCH_PREFIX}{name}-v{after}"
    if git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0:
        raise UserError(f"branch {branch} already exists: a rollback of v{after} is already proposed "
                        f"(delete it with `git branch -D {branch}` to start over)")
    if git(root, "ls-remote", "--exit-code", "--heads", remote, branch, check=False).returncode == 0:
        raise UserError(f"branch {branch} already exists on {remote}: a rollback of v{after} is already proposed")
    r = Rollback(root, name, base, git(root, "rev-parse", "HEAD").stdout.strip(), commit, subject, merge,
                 after, before, branch, list(evidence or []))
    r.title = f"model: roll back {name} v{after} -> v{before}"
    r.message = (f"{r.title}\n\nThis reverts commit {commit} ({subject}).\n\n"
                 f"Every cluster serves {name} v{before} again once this is merged and Argo CD syncs.\n")
    r.body = _body(r)
    return r


def _body(r: Rollback) -> str:
    out = [f"Reverts {r.commit[:12]} (`{r.subject}`{', a merge: reverted against its first parent' if r.merge else ''}): "
           f"every cluster goes back from **{r.name} v{r.from_version}** to **v{r.to_version}** after the merge, when "
           "Argo CD syncs the overlays. Canary targets: Argo Rollouts has already kept (or put back) the stable "
           f"v{r.to_version} pods if an analysis failed; this makes git say the same, so the next sync does not "
           f"try v{r.from_version} again.", "", "## Why: the canary analysis, as `make status` read it", ""]
    out += [f"- {line}" for line in r.evidence] or ["- nothing recorded"]
    out += ["", "---", f"Opened by `make rollback`. To serve v{r.from_version} later, fix it and bump to a new version."]
    return "\n".join(out) + "\n"


def apply(r: Rollback, remote: str = "origin", out: Callable[[str], None] = print) -> None:
    root = r.repo_root
    with Proposal(root, r.base, r.head, r.branch, remote, f"rollback of v{r.from_version}") as change:
        change.create_branch()
        change.step = f"reverting {r.commit[:12]}"
        change.reverting = change.reverted = True
        result = git(root, "revert", "--no-commit", *(["-m", "1"] if r.merge else []), r.commit, check=False)
        if result.returncode != 0:
            conflicts = git(root, "diff", "--name-only", "--diff-filter=U", check=False).stdout.split()
            raise UserError("the revert conflicts with later commits in " + (", ".join(conflicts) or result.stderr.strip())
                            + ": revert by hand, or bump to a fixed version")
        git(root, "commit", "--quiet", "-m", r.message)
        change.reverting = False

        change.step = "`python -m tools check` on the reverted tree"
        run_check(root)
        change.push()
        message = change.open(r.title, r.body)
        out(message)
        out(f"You are back on {r.base}; the rollback is on branch {r.branch}.")


def cluster_evidence(config, **kube) -> list[str]:
    """Failed analyses of every canary Application, from the live clusters (`make status`); a line saying why not."""
    from tools import status
    from tools.rollout import status as rollout_status

    try:
        rows = status.live_rows(config, **kube)
    except UserError as exc:
        return [f"`make status` could not read the clusters: {exc}"]
    except Exception as exc:  # the kubernetes client's own errors: evidence is optional, the rollback is not
        return [f"`make status` could not read the clusters: {status.api_error(exc)}"]
    lines = [f"{row.application} ({row.cluster}): {line}" for row in rows if row.canary is not None
             for line in rollout_status.failed_evidence(row.canary)]
    return lines or [f"no failed canary analysis in the {len(rows)} Application(s) `make status` read"]


def rollback(repo_root: Path | str = paths.REPO_ROOT, *, dry_run: bool = False, remote: str = "origin",
             evidence: list[str] | None = None, out: Callable[[str], None] = print) -> Rollback:
    r = plan(repo_root, remote=remote, evidence=evidence)
    if dry_run:
        out(f"--dry-run: nothing is written. The rollback would create branch {r.branch} from {r.base} "
            f"({r.head[:12]}), revert {r.commit[:12]}, push it, and open this pull request.\n")
        out(f"--- commit message ---\n{r.message}")
        out(f"--- pull request: {r.title} (base {r.base}, head {r.branch}) ---\n{r.body}")
        return r
    apply(r, remote, out)
    return r
