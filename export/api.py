"""Export both layouts of one model version, atomically.

`export_model(config)` builds every layout into a hidden temporary directory next to its final place,
writes SHA256SUMS last, and only when all layouts are complete renames them into
`<output>/<name>/<layout>/<version>/`. An existing version is refused before any work; on any failure
every temporary directory (and any directory the export created) is removed.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import keras
import tensorflow as tf

from export import fold
from export import layout as layout_mod
from export.labels import resolve_labels
from export.servable import Servable
from export.source import SourceModel, load_source
from export.warmup import warmup_requests, write_warmup
from tools import digests, paths, sources
from tools.config import FOLD_COMPLETE, Config, ModelSettings
from tools.errors import UserError
from tools.progress import Progress

FORMAT_VERSION = 1


def _check_writable(root: Path, created: list[Path]) -> None:
    """Create root (remembering what was created, to remove it on failure) and prove it is writable."""
    missing = []
    p = root
    while not p.exists():
        missing.append(p)
        p = p.parent
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        probe = tempfile.mkdtemp(prefix=paths.TMP_PREFIX + "probe-", dir=root)
        os.rmdir(probe)
    except OSError as exc:
        raise UserError(f"output directory {root} is not writable: {exc.strerror or exc}") from None


def _difference(existing: Path, expected_info: dict, labels_text: str) -> str | None:
    """Why an existing version is not what this export would write, or None when it is the same export."""
    problems = digests.verify(existing)
    if problems:
        return problems[0]
    try:
        info = json.loads((existing / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
        labels = (existing / paths.ASSETS_DIR / paths.LABELS_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        return f"unreadable export info: {exc}"
    changed = sorted(k for k in set(info) | set(expected_info) if info.get(k) != expected_info.get(k))
    if changed:
        return f"{', '.join(changed)} changed"
    if labels != labels_text:
        return "labels changed"
    return None


def export_info(settings: ModelSettings, version: int, layout: str, source: SourceModel, normalization: str,
                batch_sizes: tuple[int, ...], batch_norms_folded: int = 0) -> dict:
    k = min(settings.top_k, source.num_classes)
    return {
        "format": FORMAT_VERSION,
        "model_name": settings.name,
        "version": version,
        "layout": layout,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "input_size": list(source.input_size),
        "num_classes": source.num_classes,
        "preprocessing": normalization,
        "top_k": k,
        "max_image_pixels": settings.max_image_pixels,
        "jpeg_fast_downscale": settings.jpeg_fast_downscale,
        "exif_orientation": settings.exif_orientation,
        "fold_batch_norms": settings.fold_batch_norms,
        "batch_norms_folded": batch_norms_folded,
        "max_request_pixels": settings.max_request_pixels,
        "max_request_bytes": settings.max_request_bytes,
        "source": source.info,
        "signatures": {
            name: {
                "inputs": {paths.INPUT_KEY: {"dtype": "string", "shape": [None]}},
                "outputs": {
                    paths.OUTPUT_CLASSES: {"dtype": "int64", "shape": [None, k]},
                    paths.OUTPUT_PROBABILITIES: {"dtype": "float32", "shape": [None, k]},
                    paths.OUTPUT_LABELS: {"dtype": "string", "shape": [None, k]},
                },
            }
            for name in (paths.SERVING_SIGNATURE, paths.PREDICT_ALIAS)
        },
        "warmup_batch_sizes": list(batch_sizes),
    }


def serving_model(source: SourceModel, settings: ModelSettings) -> tuple[keras.Model, int]:
    """The Keras model the servables run: the source model with its batch normalizations folded into the layers
    before them (model.fold_batch_norms), and how many were folded. The source model itself stays as trained:
    validation compares every export with it."""
    if not settings.fold_batch_norms:
        return source.model, 0
    return fold.fold_batch_norms(source.model, complete=settings.fold_batch_norms == FOLD_COMPLETE)


def build_servable(model: keras.Model, layout: str, source: SourceModel, settings: ModelSettings,
                   labels_file: Path) -> Servable:
    """`model`: what serving_model returns (or the source model itself, unfolded)."""
    if layout == "channels_first":
        model = layout_mod.to_channels_first(model)
    return Servable(
        model,
        layout=layout,
        input_size=source.input_size,
        normalization=settings.preprocessing_mode,
        output_activation=source.info["output_activation"],
        top_k=min(settings.top_k, source.num_classes),
        labels_file=labels_file,
        max_image_pixels=settings.max_image_pixels,
        jpeg_fast_downscale=settings.jpeg_fast_downscale,
        exif_orientation=settings.exif_orientation,
        max_request_pixels=settings.max_request_pixels,
        max_request_bytes=settings.max_request_bytes,
    )


def _write_layout(tmp: Path, servable: Servable, layout: str, version: int, source: SourceModel,
                  settings: ModelSettings, batch_sizes: tuple[int, ...], progress: Progress, folded: int) -> str:
    progress(f"{layout}: saving SavedModel")
    servable.save(tmp)
    progress(f"{layout}: writing {len(batch_sizes) + 1} warmup records (batch sizes {list(batch_sizes)})")
    write_warmup(tmp / paths.ASSETS_EXTRA_DIR / paths.WARMUP_FILE,
                 warmup_requests(settings.name, batch_sizes, source.input_size))
    info = export_info(settings, version, layout, source, settings.preprocessing_mode, batch_sizes, folded)
    (tmp / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    digest = digests.write_sums(tmp)
    progress(f"{layout}: {paths.DIGEST_FILE} written, digest {digest}")
    return digest


def export_model(
    config: Config,
    *,
    version: int | None = None,
    output_dir: Path | None = None,
    layouts: tuple[str, ...] = paths.LAYOUTS,
    verbose: bool = True,
    sources_root: Path | None = None,
) -> dict[str, Path]:
    """Export `layouts` of config.model at `version` (default model.version); returns layout -> version dir.
    `sources_root`: the repository whose build/sources caches the source file (default: model.yaml's folder).
    The bytes do not depend on what the calling process traced before (export/canonical.py)."""
    settings = config.model
    version = settings.version if version is None else version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"version must be a positive integer, got {version!r}")
    output_dir = Path(output_dir or paths.REPO_ROOT / paths.MODELS_DIR)
    progress = Progress("export", verbose)
    finals = {lay: paths.version_dir(output_dir, settings.name, lay, version) for lay in layouts}
    created: list[Path] = []
    temps: dict[str, Path] = {}
    moved: list[Path] = []
    labels_dir = Path(tempfile.mkdtemp(prefix="tf-serving-labels-"))
    try:
        for lay in layouts:
            _check_writable(finals[lay].parent, created)
        # Issue 10: the source file is checked against model.source.sha256, kept in build/sources, and fetched
        # from the model store when it is not here.
        source_file = sources.resolve(config, version, sources_root, log=progress)
        progress(f"loading source model ({_describe_source(settings)})")
        source = load_source(settings, source_file)
        progress(f"source: input {source.input_size[0]}x{source.input_size[1]}, {source.num_classes} classes, "
                 f"preprocessing {settings.preprocessing_mode}, weights sha256 {source.info['weights_sha256'][:12]}")
        model, folded = serving_model(source, settings)
        if settings.fold_batch_norms:
            progress(f"folded {folded} batch normalization layer(s) into the layers before them"
                     + (" (completely: shifts before residual Adds too)" if settings.fold_batch_norms == FOLD_COMPLETE
                        else ""))
        labels = resolve_labels(settings.labels, source.num_classes)
        labels_file = labels_dir / paths.LABELS_FILE
        labels_file.write_text("\n".join(labels) + "\n", encoding="utf-8")
        todo = []
        for lay in layouts:
            if not finals[lay].exists():
                todo.append(lay)
                continue
            expected = export_info(settings, version, lay, source, settings.preprocessing_mode,
                                   config.warmup_batch_sizes(lay), folded)
            difference = _difference(finals[lay], expected, labels_file.read_text(encoding="utf-8"))
            if difference:
                raise UserError(f"version {version} of {settings.name} already exists at {finals[lay]} and differs "
                                f"({difference}); versions are never overwritten: export a new --version")
            progress(f"{lay}: version {version} already exported from the same model and settings; kept as is")
        for lay in todo:
            temps[lay] = Path(tempfile.mkdtemp(prefix=f"{paths.TMP_PREFIX}{version}-", dir=finals[lay].parent))
            progress(f"{lay}: building servable")
            servable = build_servable(model, lay, source, settings, labels_file)
            batch_sizes = config.warmup_batch_sizes(lay)
            _write_layout(temps[lay], servable, lay, version, source, settings, batch_sizes, progress, folded)
        for lay in todo:
            if finals[lay].exists():
                raise UserError(f"version {version} appeared at {finals[lay]} during the export; not overwriting it")
            os.rename(temps[lay], finals[lay])
            moved.append(finals[lay])
        progress(f"done: {', '.join(str(p) for p in moved)}" if moved else "done: nothing new to write")
        return dict(finals)
    except BaseException:
        for path in list(temps.values()) + moved:
            shutil.rmtree(path, ignore_errors=True)
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(labels_dir, ignore_errors=True)


def _describe_source(settings: ModelSettings) -> str:
    src = settings.source
    if src.model_file is not None:
        return f"model file {src.model_file}"
    weights = src.weights.name if src.weights else f"seeded weights, seed {src.seed}"
    return f"{src.architecture}, {weights}"


def with_overrides(config: Config, **changes) -> Config:
    """A copy of config with model settings (or model.source fields, prefixed `source_`) replaced."""
    source_changes = {k[len("source_"):]: v for k, v in changes.items() if k.startswith("source_") and v is not None}
    model_changes = {k: v for k, v in changes.items() if not k.startswith("source_") and v is not None}
    model = config.model
    if source_changes:
        model = replace(model, source=replace(model.source, **source_changes))
    if model_changes:
        model = replace(model, **model_changes)
    return replace(config, model=model)
