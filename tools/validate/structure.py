"""Structure checks of one exported version directory: its name, its files, their digests, symlinks, the
layout directory around it and the export's own record of what it is. Plain file-system work, no TensorFlow."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools import digests, paths
from tools.config import Config
from tools.validate.report import Report

REQUIRED = (
    (paths.SAVED_MODEL_PB, "file"),
    (paths.VARIABLES_DIR, "dir"),
    (f"{paths.VARIABLES_DIR}/variables.index", "file"),
    (f"{paths.ASSETS_DIR}/{paths.LABELS_FILE}", "file"),
    (f"{paths.ASSETS_EXTRA_DIR}/{paths.WARMUP_FILE}", "file"),
    (f"{paths.ASSETS_EXTRA_DIR}/{paths.EXPORT_INFO_FILE}", "file"),
    (paths.DIGEST_FILE, "file"),
)
# Without these TensorFlow cannot even try to load the version.
LOADABLE = (paths.SAVED_MODEL_PB, paths.VARIABLES_DIR, f"{paths.VARIABLES_DIR}/variables.index")
INFO_KEYS = ("model_name", "version", "layout", "tensorflow_version", "input_size", "num_classes", "preprocessing",
             "top_k", "max_image_pixels", "source", "signatures")
_CANONICAL = re.compile(r"^[1-9][0-9]*$")


def shown(path: Path) -> str:
    """A path as reports show it: relative to the repository when inside it (the markdown becomes a pull
    request body, where this machine's absolute paths mean nothing), else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(paths.REPO_ROOT).as_posix()
    except ValueError:
        return str(absolute)


def parse_version(name: str) -> int | None:
    """The version a directory name stands for, only in the canonical form this repository writes ("7",
    never "07" or "+7", which TF Serving would also read as 7 but which no tool here would find)."""
    return int(name) if _CANONICAL.match(name) else None


@dataclass
class LayoutDir:
    versions: list[int] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def scan_layout_dir(layout_dir: Path) -> LayoutDir:
    found = LayoutDir()
    if not layout_dir.is_dir():
        return found
    for entry in sorted(os.listdir(layout_dir)):
        if entry.startswith(paths.TMP_PREFIX):
            found.temporary.append(entry)
        elif parse_version(entry) is not None:
            found.versions.append(parse_version(entry))
        else:
            found.other.append(entry)
    found.versions.sort()
    return found


def check_layout_dir(report: Report, layout: str, layout_dir: Path) -> None:
    scan = scan_layout_dir(layout_dir)
    problems = []
    if scan.other:
        problems.append(f"{', '.join(repr(o) for o in scan.other)} in {shown(layout_dir)} "
                        f"{'is not a version' if len(scan.other) == 1 else 'are not versions'}: TF Serving loads only "
                        "directories named by a positive integer (remove or rename)")
    if scan.temporary:
        problems.append(f"leftover temporary export {', '.join(scan.temporary)} in {shown(layout_dir)} "
                        "(an interrupted export; remove it)")
    report.add("structure.layout_dir", layout, not problems,
               "; ".join(problems) or f"only version directories in {shown(layout_dir)}",
               versions=scan.versions, temporary=scan.temporary, other=scan.other)


def check_version_dir(report: Report, layout: str, path: Path, version: int | None) -> bool:
    """The version directory itself: exists, is a real directory, is named by a positive integer.
    Returns whether there is a directory to look into."""
    problems = []
    exists = path.is_dir()
    if path.is_symlink():
        target = os.readlink(path)
        problems.append(f"{shown(path)} is a symlink to {target}: a version must be a real directory "
                        "(publish and TF Serving would follow it to another export)")
    elif not path.exists():
        problems.append(f"{shown(path)} does not exist" + (
            "" if path.parent.is_dir() else f" ({shown(path.parent)} is missing too)"))
    elif not exists:
        problems.append(f"{shown(path)} is not a directory")
    if version is None:
        problems.append(f"{path.name!r} is not a version: TF Serving loads only directories named by a positive "
                        "integer, and this repository writes it without leading zeros")
    report.add("structure.version_dir", layout, not problems,
               "; ".join(problems) or f"{shown(path)} is version {version}", version=version, path=shown(path))
    return exists


def check_files(report: Report, layout: str, path: Path) -> bool:
    """Required files present. Returns whether TensorFlow can try to load the version."""
    missing = []
    for rel, kind in REQUIRED:
        p = path / rel
        if not (p.is_dir() if kind == "dir" else p.is_file()):
            missing.append(rel + ("/" if kind == "dir" else ""))
    data_files = sorted(p.name for p in (path / paths.VARIABLES_DIR).glob("variables.data-*")) \
        if (path / paths.VARIABLES_DIR).is_dir() else []
    if (path / paths.VARIABLES_DIR).is_dir() and not data_files:
        missing.append(f"{paths.VARIABLES_DIR}/variables.data-*")
    detail = "all required files present"
    if missing:
        half = any(m.startswith(paths.VARIABLES_DIR) or m.startswith(paths.SAVED_MODEL_PB) or m == paths.DIGEST_FILE
                   for m in missing)
        detail = f"missing {', '.join(missing)}" + (" (a half-written or interrupted export)" if half else "")
    files = digests.list_files(path) if path.is_dir() else []
    total = sum((path / f).stat().st_size for f in files if (path / f).is_file())
    report.add("structure.files", layout, not missing, detail, files=len(files), megabytes=round(total / 2 ** 20, 1),
               variable_shards=len(data_files))
    return all((path / rel).exists() for rel in LOADABLE) and bool(data_files)


def check_digest(report: Report, layout: str, path: Path, config: Config, version: int | None) -> str | None:
    """Every file matches SHA256SUMS; returns the version digest when SHA256SUMS exists."""
    problems = digests.verify(path)
    digest = digests.version_digest(path) if (path / paths.DIGEST_FILE).is_file() else None
    pinned = config.model.digests.get(layout) if version == config.model.version else None
    figures = {"digest": digest}
    if pinned:
        # Informational: model.yaml pins the digest of the version clusters serve; a re-export may differ.
        figures["pinned_in_model_yaml"] = pinned == digest
    shown = problems[:4] + ([f"and {len(problems) - 4} more"] if len(problems) > 4 else [])
    report.add("structure.digest", layout, not problems,
               "; ".join(shown) if problems else f"every file matches {paths.DIGEST_FILE}", **figures)
    return digest


def check_symlinks(report: Report, layout: str, path: Path) -> None:
    root = path.resolve()
    escaping, dangling, inside = [], [], []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                continue
            rel = p.relative_to(path).as_posix()
            target = p.resolve()
            if not target.exists():
                dangling.append(rel)
            elif target != root and root not in target.parents:
                escaping.append(f"{rel} -> {os.readlink(p)}")
            else:
                inside.append(rel)
    problems = []
    if escaping:
        problems.append(f"symlinks escaping the export: {', '.join(escaping)}")
    if dangling:
        problems.append(f"dangling symlinks: {', '.join(dangling)}")
    report.add("structure.symlinks", layout, not problems,
               "; ".join(problems) or "no symlink leaves the export", symlinks_inside=len(inside),
               escaping=len(escaping), dangling=len(dangling))


def read_export_info(path: Path) -> dict | None:
    try:
        info = json.loads((path / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _source_note(info: dict, config: Config) -> str | None:
    """How model.yaml's source differs from the export's own record (information, not a failure)."""
    record = info.get("source") or {}
    src = config.model.source
    if record.get("kind") == "model_file":
        if src.model_file is None:
            return f"made from model file {record.get('file')}; model.yaml names {src.architecture} instead"
        if src.model_file.name != record.get("file"):
            return f"made from model file {record.get('file')}; model.yaml names {src.model_file.name}"
    elif record.get("kind") == "architecture":
        if src.model_file is not None:
            return f"made from {record.get('architecture')}; model.yaml names model file {src.model_file.name}"
        if record.get("architecture") != src.architecture:
            return f"made from {record.get('architecture')}; model.yaml names {src.architecture}"
    return None


def check_export_info(report: Report, layout: str, path: Path, config: Config, version: int | None) -> dict | None:
    """The export's own record agrees with where it lies and with what model.yaml pins for serving (name,
    version, top_k: the overlays are rendered from them). Its own settings (source, preprocessing, input size,
    classes) are what TF Serving will run and what the other checks use; where model.yaml says otherwise,
    the line says so without failing."""
    info_path = path / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE
    if not info_path.is_file():
        report.add("structure.export_info", layout, False, f"{paths.ASSETS_EXTRA_DIR}/{paths.EXPORT_INFO_FILE} is missing")
        return None
    info = read_export_info(path)
    if info is None:
        report.add("structure.export_info", layout, False, f"{paths.EXPORT_INFO_FILE} is not a JSON object")
        return None
    problems = [f"no {k!r}" for k in INFO_KEYS if k not in info]
    settings = config.model
    pinned = {
        "model_name": (settings.name, "model.yaml's model.name (the name TF Serving serves)"),
        "version": (version, "its directory"),
        "layout": (layout if layout in paths.LAYOUTS else info.get("layout"), "its directory"),
    }
    if "num_classes" in info:
        pinned["top_k"] = (min(settings.top_k, info["num_classes"]), "model.yaml's model.top_k (the overlays' "
                                                                     "smoke test expects it)")
    for key, (want, where) in pinned.items():
        if key in info and want is not None and info[key] != want:
            problems.append(f"{key} is {info[key]!r} but {where} says {want!r}")
    own = {"preprocessing": settings.preprocessing_mode, "max_image_pixels": settings.max_image_pixels,
           "jpeg_fast_downscale": settings.jpeg_fast_downscale, "exif_orientation": settings.exif_orientation,
           "max_request_pixels": settings.max_request_pixels, "max_request_bytes": settings.max_request_bytes,
           "fold_batch_norms": settings.fold_batch_norms}
    notes = [f"{k} {info[k]!r} (model.yaml: {v!r})" for k, v in own.items() if k in info and info[k] != v]
    source_note = _source_note(info, config)
    if source_note:
        notes.insert(0, source_note)
    detail = ("export_info.json: " + "; ".join(problems)) if problems else (
        f"{paths.EXPORT_INFO_FILE} agrees with its place and with what model.yaml pins (name, top_k)"
        + (f"; the export's own settings, used by every check, differ from model.yaml: {'; '.join(notes)}"
           if notes else ""))
    report.add("structure.export_info", layout, not problems, detail,
               input_size=info.get("input_size"), num_classes=info.get("num_classes"), top_k=info.get("top_k"),
               preprocessing=info.get("preprocessing"), exported_with_tf=info.get("tensorflow_version"),
               differs_from_model_yaml=len(notes))
    return info
