"""Open the pull request that moves every cluster to model version N: the one way a version reaches a cluster.

    make bump VERSION=N [ARGS="--dry-run"]
    python -m tools bump N [--dry-run] [--no-publish-check] [--remote origin]

Refuses, naming the problem and changing nothing, unless: the worktree is clean and on a branch; N is greater
than model.version (or equal to it while model.digests pins nothing: the first pin of a fresh repository,
`make bump VERSION=1`); both layouts of N are exported (complete, matching SHA256SUMS); the validation report
of N passed for exactly those exports; N is published to the model store with the same SHA256SUMS, every file
there matches it (read back, streamed) and the store holds its source file (skip these with --no-publish-check
when the publish happens elsewhere, e.g. a CI job with the store's credentials); branch model/<name>-v<N> does
not exist yet.

Then: model.yaml gets model.version = N, model.digests and model.source.sha256 (the model or weights file the
export was made from, as its export_info.json records; null for seeded weights), a round-trip edit that keeps
every comment; the overlays are re-rendered (and their golden files in tests/k8s/golden rewritten, which
`make test` compares), `python -m tools check` runs (what CI runs), and the change is committed on
model/<name>-v<N>, pushed with -u, and proposed with `gh pr create` (body: the validation report and what
changes in each overlay's built manifests). Without `gh` on PATH it prints how to open the pull request.
Afterwards you are back on the branch you started from.

If any step fails (check, push, gh), everything is undone: the branch is deleted (locally, and on the remote
if it was pushed), the worktree and HEAD are what they were, and the message says which step failed.
--dry-run prints the model.yaml diff, the rendered diff, the commit and the pull request, and writes nothing.
"""
from __future__ import annotations

import difflib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ruamel.yaml import YAML

from tools import digests as digest_files
import fsspec

from tools import kustomize, paths, publish, render, sources
from tools.bump import manifest_diff
from tools.bump.model_yaml import set_version
from tools.check import golden
from tools.config import Config, load_config, parse_config
from tools.errors import UserError
from tools.goldenset import overlay as goldenset_overlay
from tools.pull_request import Proposal, current_branch, git, require_clean, run_check

BRANCH_PREFIX = "model/"


@dataclass
class Plan:
    """Everything a bump will do, computed without writing anything."""

    repo_root: Path
    config: Config
    version: int
    base: str  # the branch the user is on, and the pull request's base
    head: str  # its commit
    branch: str
    digests: dict[str, str]
    source_sha256: str | None
    model_yaml_old: str
    model_yaml_new: str
    rendered: dict[str, str]  # relpath -> new content, changed files only
    summaries: dict[str, list[str]]  # overlay -> markdown lines
    golden: dict[str, str]  # golden files of the built overlays (tests/k8s/golden) -> "changed" | "added" | "removed"
    report_md: str
    title: str = ""
    body: str = ""
    commit_message: str = ""
    source_uri: str | None = None  # where the store keeps the source file of this version


def branch_name(config: Config, version: int) -> str:
    return f"{BRANCH_PREFIX}{config.model.name}-v{version}"


def _require_published(config: Config, version: int, exports: dict[str, publish.Export]) -> None:
    how = f"run `make publish VERSION={version}`, or pass --no-publish-check if it is published elsewhere"
    try:
        uri = publish.upload_uri(config)
    except UserError as exc:
        raise UserError(f"cannot tell whether v{version} is published: {exc}; or pass --no-publish-check") from None
    for layout, export in exports.items():
        dest = paths.store_version_uri(uri, config.model.name, layout, version)
        found = publish.published_sums(dest)
        if found is None:
            raise UserError(f"{config.model.name} v{version} is not published: {dest} has no "
                            f"{paths.DIGEST_FILE}; {how}")
        if found != export.sums:
            raise UserError(f"{dest} holds other content ({digest_files.digest_of_text(found)}) than the "
                            f"validated export ({export.digest}): export and publish a new version number")
        problems = publish.verify_published(dest, found)
        if problems:
            raise UserError(publish.corrupt_message(dest, problems))
    for ref in {sources.from_export_info(publish.export_info(e)) for e in exports.values()} - {None}:
        src = paths.store_source_uri(uri, config.model.name, ref.sha256, ref.suffix)
        fs, remote = fsspec.core.url_to_fs(src)
        if not fs.exists(remote):
            raise UserError(f"the source of v{version} (sha256 {ref.sha256}) is not in the store at {src}: {how}")
        got = sources.stored_sha256(fs, remote)
        if got != ref.sha256:
            raise UserError(f"the store's copy of the source of v{version} is corrupt: {src} has sha256 {got}")


def _source_sha256(exports: dict[str, publish.Export]) -> str | None:
    """The sha256 of the model or weights file both layouts were exported from (None: seeded weights)."""
    refs = {sources.from_export_info(publish.export_info(e)) for e in exports.values()}
    shas = {ref.sha256 if ref else None for ref in refs}
    if len(shas) > 1:
        raise UserError(f"the layouts were exported from different source files ({', '.join(map(str, shas))}): "
                        "export every layout of the version again from one source")
    return shas.pop() if shas else None


def _build_overlays(root: Path, config: Config) -> dict[str, list[dict]]:
    return {t: kustomize.build(root / paths.OVERLAYS_DIR / t) for t in config.targets}


def _manifest_changes(repo_root: Path, config: Config, new_config: Config,
                      rendered: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per overlay, what changes in its built manifests (built before, and after in a scratch copy of k8s/);
    and how the golden files of the built overlays change, where the repository keeps them."""
    before = _build_overlays(repo_root, config)
    with tempfile.TemporaryDirectory(prefix="bump-") as scratch:
        scratch_root = Path(scratch)
        shutil.copytree(repo_root / paths.K8S_DIR, scratch_root / paths.K8S_DIR, symlinks=True)
        for rel, text in rendered.items():
            if rel.startswith(paths.K8S_DIR + "/"):
                (scratch_root / rel).parent.mkdir(parents=True, exist_ok=True)
                (scratch_root / rel).write_text(text)
        after = _build_overlays(scratch_root, new_config)
    summaries = {t: manifest_diff.summarize(before[t], after[t]) for t in new_config.targets}
    golden_changes: dict[str, str] = {}
    if (repo_root / paths.GOLDEN_DIR).is_dir():
        want = {f"{paths.GOLDEN_DIR}/{t}/{name}": text
                for t in new_config.targets for name, text in golden.dump(after[t], t).items()}
        have = {p.relative_to(repo_root).as_posix(): p.read_text()
                for p in (repo_root / paths.GOLDEN_DIR).rglob("*.yaml")}
        golden_changes = {rel: "added" if rel not in have else "removed" if rel not in want else "changed"
                          for rel in sorted(set(want) | set(have)) if want.get(rel) != have.get(rel)}
    return summaries, golden_changes


def plan(repo_root: Path | str = paths.REPO_ROOT, version: int = 0, *, publish_check: bool = True,
         remote: str = "origin") -> Plan:
    """Check every precondition and compute the whole change; writes nothing. UserError on any refusal."""
    repo_root = Path(repo_root).resolve()
    base = current_branch(repo_root, "bump")
    require_clean(repo_root, "the bump commits only its own changes and must be able to undo them")
    config = load_config(repo_root / paths.MODEL_YAML)
    name, current = config.model.name, config.model.version
    first_pin = version == current and not config.model.digests
    if version <= current and not first_pin:
        raise UserError(f"model.version is already {current}: the new version must be greater (got {version})")
    exports = publish.find_exports(config, version)
    report_md = publish.check_report(config, version, exports)
    if publish_check:
        _require_published(config, version, exports)
    branch = branch_name(config, version)
    if git(repo_root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0:
        raise UserError(f"branch {branch} already exists: delete it (`git branch -D {branch}`) or review it instead")
    if git(repo_root, "remote", "get-url", remote, check=False).returncode != 0:
        raise UserError(f"no git remote named {remote!r} to push the branch to (--remote names another)")
    if git(repo_root, "ls-remote", "--exit-code", "--heads", remote, branch, check=False).returncode == 0:
        raise UserError(f"branch {branch} already exists on {remote}: an open pull request for v{version}?")

    digests = {layout: export.digest for layout, export in exports.items()}
    source_sha256 = _source_sha256(exports)
    old_text = (repo_root / paths.MODEL_YAML).read_text()
    new_text = set_version(old_text, version, digests, source_sha256)
    new_config = parse_config(YAML(typ="safe", pure=True).load(new_text), file=paths.MODEL_YAML, base=repo_root)
    goldenset_overlay.require_for_bump(new_config, repo_root)  # each overlay gets its golden set (issue 11)
    rendered_all = render.render_files(new_config, repo_root)
    rendered = {rel: text for rel, text in rendered_all.items() if _read(repo_root / rel) != text}
    summaries, golden_changes = _manifest_changes(repo_root, config, new_config, rendered)
    p = Plan(repo_root, config, version, base, git(repo_root, "rev-parse", "HEAD").stdout.strip(), branch, digests,
             source_sha256, old_text, new_text, rendered, summaries, golden_changes, Path(report_md).read_text())
    ref = next((r for r in (sources.from_export_info(publish.export_info(e)) for e in exports.values()) if r), None)
    if ref is not None:
        p.source_uri = paths.store_source_uri(config.store.uri, name, ref.sha256, ref.suffix)
    p.title = f"model: pin {name} v{version}" if first_pin else f"model: {name} v{current} -> v{version}"
    p.commit_message = _commit_message(p)
    p.body = _pr_body(p, publish_check)
    return p


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _commit_message(p: Plan) -> str:
    name = p.config.model.name
    lines = [f"model: bump {name} to v{p.version}", "",
             f"Every cluster serves {name} v{p.version} once this is merged and Argo CD syncs.", ""]
    lines += [f"model.digests.{layout}: {digest}" for layout, digest in p.digests.items()]
    if p.source_sha256:
        lines.append(f"model.source.sha256: {p.source_sha256}")
    lines += ["", f"Re-rendered: {', '.join(sorted(p.rendered)) or 'nothing'}",
              *([f"Golden files of the built overlays: {len(p.golden)} updated in {paths.GOLDEN_DIR}"]
                if p.golden else []),
              f"Validation report: {paths.validation_report(paths.REPORTS_DIR, name, p.version, 'md')} (passed)"]
    return "\n".join(lines) + "\n"


def _pr_body(p: Plan, published: bool) -> str:
    name, config = p.config.model.name, p.config
    store = config.store.upload_uri
    rows = "\n".join(f"| {layout} | `{digest}` | `{paths.store_version_uri(config.store.uri, name, layout, p.version)}`"
                     " |" for layout, digest in p.digests.items())
    first_pin = p.version == config.model.version
    out = [
        (f"Pins **{name} v{p.version}** for the first time (model.digests was empty, so no pod could start)."
         if first_pin else f"Moves every cluster from **{name} v{config.model.version}** to **v{p.version}**.") +
        " After the merge, Argo CD "
        "syncs each cluster's overlay; each pod's init step fetches the version and verifies the digest below; "
        "the PostSync smoke test replays the golden set (each overlay's `golden-set/`) against the new version and "
        "fails the sync unless every answer matches the recorded one within the target's tolerance.",
        "",
        "| layout | digest (sha256 of SHA256SUMS) | fetched from |",
        "| --- | --- | --- |",
        rows,
        "",
        *([f"Source: `{p.source_sha256}` (model.source.sha256), stored at `{p.source_uri}`; CI re-exports "
           "from it and requires the digests above (`make verify-digests`).", ""] if p.source_sha256 else []),
        f"Published: {'checked in ' + store if published else 'not checked by the bump (--no-publish-check)'}.",
        "",
        "## What changes in each overlay (built manifests)",
    ]
    for target, lines in p.summaries.items():
        out += ["", f"### {target} (`{paths.OVERLAYS_DIR}/{target}`)", ""]
        out += lines or ["- nothing"]
    rollback = ("Rollback: revert this pull request (GitHub's Revert button, or `git revert -m 1` of its merge "
                "commit, in a pull request of its own). This is the first pin, so the revert leaves model.digests "
                "empty again: pods then stay in Init with fetch-model's error naming the pin command, until a "
                "version is pinned. Opened by `make bump`.")
    out += ["", p.report_md.strip(), "", "---"]
    if first_pin:
        out.append(rollback)
        return "\n".join(out) + "\n"
    out += ["Rollback: revert this pull request (GitHub's Revert button, or `git revert -m 1` of its merge "
            "commit, in a pull request of its own); Argo CD then syncs the previous version back. "
            "Opened by `make bump`."]
    return "\n".join(out) + "\n"


def diff_text(p: Plan) -> str:
    """The model.yaml and rendered-file diffs, as `git diff` would show them."""
    chunks = [_diff(paths.MODEL_YAML, p.model_yaml_old, p.model_yaml_new)]
    for rel, text in sorted(p.rendered.items()):
        chunks.append(_diff(rel, _read(p.repo_root / rel) or "", text))
    if p.golden:
        chunks.append(f"golden files ({paths.GOLDEN_DIR}), rewritten from the new builds:\n")
        chunks += [f"  {change:8} {rel}\n" for rel, change in p.golden.items()]
    return "".join(chunks)


def _diff(rel: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}"))


def bump(repo_root: Path | str = paths.REPO_ROOT, version: int = 0, *, dry_run: bool = False,
         publish_check: bool = True, remote: str = "origin", out: Callable[[str], None] = print) -> Plan:
    """Plan, then (unless dry_run) branch, commit, push and open the pull request; undo everything on failure."""
    p = plan(repo_root, version, publish_check=publish_check, remote=remote)
    if dry_run:
        out(f"--dry-run: nothing is written. The bump would create branch {p.branch} from {p.base} "
            f"({p.head[:12]}), commit and push this change, and open this pull request.\n")
        out(diff_text(p))
        out(f"--- commit message ---\n{p.commit_message}")
        out(f"--- pull request: {p.title} (base {p.base}, head {p.branch}) ---\n{p.body}")
        return p
    _apply(p, remote, out)
    return p


def _apply(p: Plan, remote: str, out: Callable[[str], None]) -> None:
    root = p.repo_root
    with Proposal(root, p.base, p.head, p.branch, remote, f"bump to v{p.version}") as change:
        change.create_branch()
        change.step = "writing model.yaml and re-rendering"
        change.written.append(paths.MODEL_YAML)
        _write_atomic(root / paths.MODEL_YAML, p.model_yaml_new)
        change.written += list(p.rendered) + list(p.golden)
        changed = render.render(root)
        change.written += changed
        if (root / paths.GOLDEN_DIR).is_dir():
            # Golden files of the built overlays change with every version; `make test` compares them.
            golden_changed = golden.write(root)
            change.written += golden_changed
            changed += golden_changed

        change.step = "`python -m tools check` on the bumped tree"
        run_check(root)

        change.step = "committing"
        git(root, "add", "--", paths.MODEL_YAML, *sorted(set(changed)))
        git(root, "commit", "--quiet", "-m", p.commit_message)

        change.push()
        message = change.open(p.title, p.body)
        out(message)
        out(f"You are back on {p.base}; the bump is on branch {p.branch} (`git switch {p.branch}` to amend it).")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.bump-tmp")
    tmp.write_text(text)
    tmp.replace(path)
