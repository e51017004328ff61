"""A change proposed on its own branch and opened as a pull request, taken back in full when any step fails.

`make bump` and `make rollback` both: refuse a dirty or detached worktree, create a branch off the current one,
commit, run `python -m tools check` (what CI runs), push with -u, open the pull request with `gh pr create` (or
print what to open when gh is missing) and switch back. If any step fails, or the user interrupts it, `Proposal`
undoes what was done (revert in progress, files written, branch, pushed branch) and the error names the step and
what state the repository is left in.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tools import proc
from tools.errors import UserError


def git(repo_root: Path, *args: str, check: bool = True) -> proc.Result:
    return proc.run(["git", *args], cwd=repo_root, check=check)


def branch_or_none(root: Path) -> str | None:
    result = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def current_branch(root: Path, doing: str) -> str:
    """The branch the pull request goes into; `doing` ends the error ("bump", "roll back")."""
    base = branch_or_none(root)
    if base is None:
        raise UserError(f"HEAD is detached: check out the branch the pull request should go into, then {doing}")
    return base


def require_clean(root: Path, why: str) -> None:
    """A clean worktree (untracked files too): the undo must be able to restore it exactly. `why` ends the error."""
    status = git(root, "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
    if status:
        shown = ", ".join(line.strip() for line in status[:3]) + (" ..." if len(status) > 3 else "")
        raise UserError(f"the worktree has uncommitted changes ({shown}): commit or stash them first "
                        f"({why})")


def run_check(root: Path) -> None:
    try:
        proc.run([sys.executable, "-m", "tools", "check"], cwd=root)
    except proc.CommandError as exc:
        failed = [line for line in exc.stdout.splitlines() if line.startswith("✗")]
        print(exc.stdout, file=sys.stderr)
        raise UserError(f"check failed: {'; '.join(failed) or exc}") from None


def compare_url(remote_url: str, base: str, branch: str) -> str | None:
    """GitHub's "open a pull request" page for a github.com remote (https or ssh form)."""
    for prefix in ("https://github.com/", "git@github.com:", "ssh://git@github.com/"):
        if remote_url.startswith(prefix):
            repo = remote_url[len(prefix):].removesuffix(".git")
            return f"https://github.com/{repo}/compare/{base}...{branch}?expand=1"
    return None


class Proposal:
    """One branch off `base` at `head`, from creation to the opened pull request.

        with Proposal(root, base, head, branch, remote, "bump to v3") as change:
            change.step = "..."; change.create_branch(); ...; change.push(); change.open(title, body)

    On any exception inside the block everything is undone and a UserError names `what`, the step and the state
    (KeyboardInterrupt is printed and re-raised)."""

    def __init__(self, root: Path, base: str, head: str, branch: str, remote: str, what: str):
        self.root, self.base, self.head, self.branch, self.remote, self.what = root, base, head, branch, remote, what
        self.step = "preparing"
        self.branch_created = self.pushed = False
        self.reverting = False  # a `git revert` is in progress: abort it
        self.reverted = False  # a revert ran on the branch: it may have left files git does not track
        self.written: list[str] = []  # repository-relative files this change wrote (untracked ones are removed)

    def create_branch(self) -> None:
        self.step = f"creating branch {self.branch}"
        git(self.root, "switch", "--quiet", "-c", self.branch)
        self.branch_created = True

    def push(self) -> None:
        self.step = f"pushing {self.branch} to {self.remote}"
        git(self.root, "push", "--quiet", "-u", self.remote, self.branch)
        self.pushed = True

    def open(self, title: str, body: str) -> str:
        """`gh pr create`, or, without gh, what to open by hand; then back on the base branch."""
        self.step = "opening the pull request with `gh pr create`"
        gh = shutil.which("gh")
        if gh is None:
            url = compare_url(git(self.root, "remote", "get-url", self.remote).stdout.strip(), self.base, self.branch)
            message = (f"Pushed {self.branch} to {self.remote}. `gh` is not installed, so open the pull request "
                       f"yourself{': ' + url if url else ''}\n  title: {title}\n  base: {self.base}  head: "
                       f"{self.branch}\n  body:\n\n{body}")
        else:
            with tempfile.TemporaryDirectory(prefix="pr-body-") as scratch:
                body_file = Path(scratch) / "body.md"
                body_file.write_text(body)
                result = proc.run([gh, "pr", "create", "--title", title, "--body-file", str(body_file),
                                   "--base", self.base, "--head", self.branch], cwd=self.root)
            message = f"Opened the pull request: {result.stdout.strip() or self.branch}"
        git(self.root, "switch", "--quiet", self.base)
        return message

    def undo(self) -> list[str]:
        """Restore the user's branch and worktree; returns what could not be undone."""
        root, problems = self.root, []
        if self.reverting:
            git(root, "revert", "--abort", check=False)
        if self.branch_created or self.written:
            git(root, "checkout", "--force", "--quiet", self.base, check=False)
            untracked = set(git(root, "ls-files", "--others", "--exclude-standard", check=False).stdout.splitlines())
            for rel in self.written:
                if rel in untracked:
                    (root / rel).unlink(missing_ok=True)
            if self.reverted:  # the worktree was clean before (require_clean): what is untracked, the revert left
                git(root, "clean", "-fdq", check=False)
        if self.branch_created and git(root, "branch", "-D", self.branch, check=False).returncode != 0:
            problems.append(f"could not delete branch {self.branch}")
        if self.pushed and git(root, "push", "--quiet", self.remote, "--delete", self.branch, check=False).returncode:
            problems.append(f"could not delete {self.branch} from {self.remote}: delete it there by hand")
        now = git(root, "rev-parse", "HEAD", check=False).stdout.strip()
        if branch_or_none(root) != self.base or now != self.head:
            problems.append(f"HEAD is {now[:12]}, not {self.base} at {self.head[:12]}")
        if git(root, "status", "--porcelain", "--untracked-files=all", check=False).stdout.strip():
            problems.append("the worktree still has changes (see git status)")
        return problems

    def __enter__(self) -> "Proposal":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        problems = self.undo()
        what = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        state = (f"nothing was kept: back on {self.base} at {self.head[:12]} with the worktree as it was"
                 f"{', branch ' + self.branch + ' deleted' if self.branch_created else ''}"
                 f"{' (also from ' + self.remote + ')' if self.pushed else ''}")
        if problems:
            state = "undoing it did not fully work: " + "; ".join(problems)
        if isinstance(exc, KeyboardInterrupt):
            print(f"error: interrupted while {self.step}; {state}", file=sys.stderr)
            return False
        raise UserError(f"{self.what} failed while {self.step}: {what}; {state}") from None
