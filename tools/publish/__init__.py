"""Upload an exported, validated model version (every layout a target serves) to the model store.

    make publish [VERSION=N]
    python -m tools publish [--version N] [--config model.yaml] [--models-dir DIR] [--reports-dir DIR]

Reads build/models/<name>/<layout>/<N>/ and writes it to `paths.store_version_uri(store.upload_uri, ...)`
(`store.publish_uri`, else `store.uri`) through fsspec: gs:// (gcsfs), s3:// (s3fs), az:// (adlfs, the account from
store.azure_account: tools/sources.py store_uri) and file:// work.

The store's contract, which the init step of every serving pod relies on:
- SHA256SUMS is written last, so a version directory without it is absent (an upload still running or cut
  short). Publishing again resumes such a partial version: files already there with the right sha256 are
  kept, everything else is uploaded again, and files that SHA256SUMS does not list are removed.
- A complete version is immutable: if the store holds different content under the same version, publish
  refuses; identical content is a no-op ("already published").
- A published version is checked file by file, not only by its SHA256SUMS (streamed, block by block): a
  version whose files no longer match is reported as corrupt, naming the file, never as "already published"
  (and `make bump` refuses it the same way).
- The source file the version was exported from (a model file or weights file, named in export_info.json)
  goes to `<store>/<name>/sources/sha256-<hex><suffix>` once, before the version (tools/sources.py).
- Only validated bytes get in: publish refuses unless the validation report of that version passed and
  names exactly the digests of the export on disk. There is deliberately no flag to skip this: a pod
  loads whatever the store holds, and `make bump` would refuse the version anyway.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fsspec

from tools import digests, paths, sources
from tools.config import Config
from tools.errors import UserError

# Reading a remote file back (to resume) in blocks of this size.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Export:
    """One layout of an exported version on this machine, complete and matching its SHA256SUMS."""

    layout: str
    path: Path
    sums: bytes  # the SHA256SUMS file as written by the exporter

    @property
    def digest(self) -> str:
        return digests.digest_of_text(self.sums)

    @property
    def files(self) -> dict[str, str]:
        """relative path -> sha256 hex, as SHA256SUMS lists them."""
        return digests.parse_sums(self.sums.decode())


def repo_root(config: Config) -> Path:
    """The directory of model.yaml: build/ and k8s/ are relative to it."""
    return Path(config.path).resolve().parent


def default_models_dir(config: Config) -> Path:
    return repo_root(config) / paths.MODELS_DIR


def default_reports_dir(config: Config) -> Path:
    return repo_root(config) / paths.REPORTS_DIR


def layouts(config: Config) -> list[str]:
    """The layouts some target serves, in paths.LAYOUTS order: what export, publish and bump deal in."""
    return [layout for layout in paths.LAYOUTS if config.targets_for_layout(layout)]


def find_exports(config: Config, version: int, models_dir: Path | None = None) -> dict[str, Export]:
    """Every served layout of `version`, verified against its SHA256SUMS; UserError naming what is wrong."""
    models_dir = Path(models_dir) if models_dir else default_models_dir(config)
    name, found = config.model.name, {}
    for layout in layouts(config):
        path = paths.version_dir(models_dir, name, layout, version)
        if not path.is_dir():
            raise UserError(f"no {layout} export of {name} v{version} at {path}: run `make export VERSION={version}`")
        problems = digests.verify(path)
        if problems:
            raise UserError(f"the {layout} export of {name} v{version} at {path} is not usable: {problems[0]}")
        found[layout] = Export(layout, path, (path / paths.DIGEST_FILE).read_bytes())
    return found


def check_report(config: Config, version: int, exports: dict[str, Export], reports_dir: Path | None = None) -> Path:
    """Refuse unless the validation report of `version` passed for exactly these exports; return its .md path."""
    reports_dir = Path(reports_dir) if reports_dir else default_reports_dir(config)
    name = config.model.name
    json_path = paths.validation_report(reports_dir, name, version, "json")
    md_path = paths.validation_report(reports_dir, name, version, "md")
    again = f"run `make validate VERSION={version}`"
    if not json_path.is_file():
        raise UserError(f"no validation report for {name} v{version} ({json_path} is missing): {again}")
    try:
        report = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{json_path} is not a readable validation report: {again}") from None
    if not isinstance(report, dict) or report.get("model") != name or report.get("version") != version:
        raise UserError(f"{json_path} is not the validation report of {name} v{version}: {again}")
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    not_run = [c for c in checks if c.get("status") == "not_run"]
    if report.get("passed") is not True or (not_run and report.get("accepted_not_run") is not True):
        failed = [c for c in checks if c.get("status", "passed" if c.get("passed") else "failed") == "failed"]
        if not failed and not_run:
            # A check that never ran proves nothing: refuse unless the user accepted it by name of the flag.
            raise UserError(f"validation of {name} v{version} has {len(not_run)} checks that did not run "
                            f"({_check_names(not_run)}): run `make validate VERSION={version}` where they can "
                            f"run, or accept them with `make validate VERSION={version} ARGS=--accept-not-run`; "
                            f"see {md_path}")
        what = f": {_check_names(failed)} failed" if failed else ""
        raise UserError(f"validation of {name} v{version} did not pass{what}; see {md_path}")
    validated = report.get("exports") if isinstance(report.get("exports"), dict) else {}
    for layout, export in exports.items():
        entry = validated.get(layout)
        got = entry.get("digest") if isinstance(entry, dict) else None
        if got != export.digest:
            raise UserError(
                f"{json_path} validated {layout} {got or 'nothing'}, but the export on disk is {export.digest} "
                f"(exported again since?): {again}"
            )
    if not md_path.is_file():
        raise UserError(f"{md_path} is missing beside {json_path.name}: {again}")
    return md_path


def _check_names(checks: list[dict]) -> str:
    names = [str(c.get("name")) + (f" ({c['layout']})" if c.get("layout") else "") for c in checks]
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def upload_uri(config: Config) -> str:
    """Where this machine writes versions; pvc:// is a volume inside the cluster, not writable from here."""
    return sources.store_uri(config)


def export_info(export: Export) -> dict | None:
    try:
        return json.loads((export.path / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None


def verify_published(uri: str, sums: bytes) -> list[str]:
    """Problems of the published version at `uri` against `sums` (its SHA256SUMS): every listed file is read
    back and hashed as it streams; files SHA256SUMS does not list are problems too (the init step refuses them)."""
    fs, root = fsspec.core.url_to_fs(uri)
    expected = digests.parse_sums(sums.decode())
    problems = []
    try:
        for rel, sha in expected.items():
            remote = f"{root}/{rel}"
            if not fs.exists(remote):
                problems.append(f"{rel} is missing")
            elif sources.stored_sha256(fs, remote) != sha:
                problems.append(f"{rel} does not match its sha256 in {paths.DIGEST_FILE}")
        for found in fs.find(root):
            rel = found[len(root) + 1:]
            if rel != paths.DIGEST_FILE and rel not in expected:
                problems.append(f"{rel} is not listed in {paths.DIGEST_FILE}")
    except OSError as exc:
        problems.append(f"could not read it back: {_one_line(exc)}")
    return problems


def corrupt_message(dest: str, problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (f"{dest} is published but corrupt: {problems[0]}{more}; every pod would refuse it. Repair it: delete "
            f"{dest}/{paths.DIGEST_FILE} and run `make publish` again (it re-uploads exactly the damaged files)")


def published_sums(uri: str) -> bytes | None:
    """The SHA256SUMS of the version at `uri` (a store_version_uri), None while the version is absent."""
    fs, root = fsspec.core.url_to_fs(uri)
    target = f"{root}/{paths.DIGEST_FILE}"
    try:
        return fs.cat_file(target) if fs.exists(target) else None
    except OSError as exc:
        raise UserError(f"could not read {uri}/{paths.DIGEST_FILE}: {_one_line(exc)}") from None


def publish(
    config: Config,
    version: int | None = None,
    *,
    models_dir: Path | None = None,
    reports_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Publish `version` (default model.version); returns layout -> "published" | "already published"."""
    log = log or (lambda line: print(line, file=sys.stderr))
    version = version or config.model.version
    uri = upload_uri(config)
    exports = find_exports(config, version, models_dir)
    check_report(config, version, exports, reports_dir)
    # The source first: a version in the store is always re-derivable from a source in the store.
    refs = {ref for ref in (sources.from_export_info(export_info(e)) for e in exports.values()) if ref}
    for ref in sorted(refs, key=lambda r: r.sha256):
        sources.upload(config, ref, repo_root(config), log)
    outcome = {}
    for layout, export in exports.items():
        dest = paths.store_version_uri(uri, config.model.name, layout, version)
        outcome[layout] = publish_export(export, dest, log)
    return outcome


def publish_export(export: Export, dest: str, log: Callable[[str], None]) -> str:
    """Make `dest` a complete copy of `export` (resuming a partial one); never replace a complete one."""
    existing = published_sums(dest)
    if existing == export.sums:
        problems = verify_published(dest, existing)
        if problems:
            raise UserError(corrupt_message(dest, problems))
        log(f"{export.layout}: already published at {dest} ({export.digest}; every file verified)")
        return "already published"
    if existing is not None:
        raise UserError(
            f"{dest} already holds a different version ({digests.digest_of_text(existing)}; this export is "
            f"{export.digest}): published versions are never overwritten, export under a new version number"
        )
    fs, root = fsspec.core.url_to_fs(dest)
    files = export.files
    uploaded = kept = 0
    try:
        for rel, sha in files.items():
            local, remote = export.path / rel, f"{root}/{rel}"
            if _same_file(fs, remote, local.stat().st_size, sha):
                kept += 1
                continue
            fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
            upload_file(fs, local, remote)
            uploaded += 1
        # A partial upload of some other export may have left files this version does not have.
        for found in fs.find(root):
            if found[len(root) + 1:] not in files:
                fs.rm_file(found)
        # Last, and in one step: from this moment readers see a complete version.
        staging = f"{root}/{paths.TMP_PREFIX}{paths.DIGEST_FILE}"
        fs.pipe_file(staging, export.sums)
        fs.mv(staging, f"{root}/{paths.DIGEST_FILE}")
    except OSError as exc:
        raise UserError(
            f"upload of {export.layout} to {dest} stopped: {_one_line(exc)}; the version stays absent "
            f"(no {paths.DIGEST_FILE} there): run publish again to resume"
        ) from None
    size = sum((export.path / rel).stat().st_size for rel in files)
    log(f"{export.layout}: published {export.digest} to {dest} "
        f"({uploaded} files uploaded, {kept} already there, {size / 1e6:.1f} MB)")
    return "published"


def upload_file(fs, local: Path, remote: str) -> None:
    """One file up (a seam tests use to cut an upload short)."""
    fs.put_file(str(local), remote)


def _same_file(fs, remote: str, size: int, sha: str) -> bool:
    """True when a previous, interrupted upload already left exactly this file there."""
    if not fs.exists(remote) or fs.size(remote) != size:
        return False
    h = hashlib.sha256()
    with fs.open(remote, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest() == sha


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
