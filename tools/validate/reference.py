"""Which source model the parity check compares an export with: the one the export's own record names.

An export records its source in assets.extra/export_info.json: for a model file its name and sha256, for an
applications ResNet its architecture, classes and seed or the sha256 of its weights file. The reference is
rebuilt from that record, not from model.yaml, so an export made with `python -m export --model-file ...` is
checked against the file it came from without editing model.yaml. A file is accepted only by its sha256;
the places looked in, in order: what model.yaml names, `--source FILE`, and the local source cache
(build/sources/sha256-<hex><suffix> of the repository model.yaml is in, filled by `make export` and by fetches
from the store: tools/sources.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tools import paths
from tools.config import Config
from tools.digests import sha256_file
from tools.validate.structure import shown


@dataclass
class Found:
    source: object | None  # export.source.SourceModel, or None when the source is not at hand
    where: str  # which reference was used, or why none could be


def _candidates(recorded_name: str, sha: str, config_path: Path | None, extra: Path | None,
                cache_root: Path) -> list[tuple[Path, str]]:
    suffix = Path(recorded_name).suffix
    out = []
    if config_path is not None:
        out.append((Path(config_path), "model.yaml's model.source"))
    if extra is not None:
        out.append((Path(extra), "--source"))
    out.append((paths.source_cache_file(cache_root, sha, suffix), "the source cache"))
    return out


def _pick(candidates: list[tuple[Path, str]], sha: str) -> tuple[Path | None, list[str]]:
    """The first candidate file whose sha256 is `sha`; and what was looked at, for the message."""
    seen = []
    for path, label in candidates:
        if not path.is_file():
            seen.append(f"{label} {shown(path)} (absent)")
            continue
        got = sha256_file(path)
        if got == sha:
            return path, seen
        seen.append(f"{label} {shown(path)} (sha256 {got[:12]}, not {sha[:12]})")
    return None, seen


def find_source(info: dict, config: Config, extra: Path | None = None) -> Found:
    """Rebuild the Keras model an export was made from, by its own record."""
    from export.source import load_source
    from tools import sources

    cache_root = sources.repo_root(config)
    record = (info or {}).get("source") or {}
    # The export's own preprocessing: model.yaml's may be `auto`, which a model file refuses (export/source.py).
    settings = replace(config.model, preprocessing=(info or {}).get("preprocessing") or "none")
    kind = record.get("kind")
    if kind == "model_file":
        sha = record.get("file_sha256") or ""
        path, seen = _pick(_candidates(record.get("file", ""), sha, settings.source.model_file, extra, cache_root), sha)
        if path is None:
            return Found(None, f"the source model file {record.get('file')} (sha256 {sha[:12]}) is not at hand: "
                               f"looked at {'; '.join(seen)}; give it with --source FILE")
        model_settings = replace(settings, source=replace(settings.source, model_file=path))
        return Found(load_source(model_settings), f"model file {shown(path)} (sha256 {sha[:12]})")
    if kind == "architecture":
        source = replace(settings.source, architecture=record.get("architecture"), classes=record.get("classes"),
                         model_file=None, weights=None, seed=record.get("seed", settings.source.seed))
        where = f"{record.get('architecture')} with {record.get('classes')} classes"
        if record.get("weights_file_sha256"):
            sha = record["weights_file_sha256"]
            path, seen = _pick(_candidates(record.get("weights_file", ""), sha, settings.source.weights, extra,
                                           cache_root), sha)
            if path is None:
                return Found(None, f"the weights file {record.get('weights_file')} (sha256 {sha[:12]}) is not at "
                                   f"hand: looked at {'; '.join(seen)}; give it with --source FILE")
            source = replace(source, weights=path)
            where += f", weights {shown(path)} (sha256 {sha[:12]})"
        else:
            where += f", seeded weights (seed {source.seed})"
        return Found(load_source(replace(settings, source=source)), where)
    return Found(None, f"export_info.json records no usable source (kind {kind!r})")
