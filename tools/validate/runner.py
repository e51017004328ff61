"""Run every check on one version (both layouts) and build its report; find the versions to validate."""
from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tools import onednn, paths
from tools.config import Config
from tools.errors import UserError
from tools.validate import accuracy, badinput, capi, correctness, layouts, ops, reference, serving, structure
from tools.validate import tfs_formats as tfs
from tools.validate.report import Check, ExportResult, Report
from tools.validate.samples import Sample, correctness_samples
from tools.validate import settings as layout_settings  # issue 16

# How many sample images go through every request format (each format and signature is one call).
FORMAT_SAMPLES = 3
_SOURCES: dict[str, reference.Found] = {}  # the source Keras model per export_info source record, once per process


def tolerances() -> dict:
    return {
        "request_formats_abs": 0.0,
        "repeat_abs": correctness.REPEAT_ATOL,
        "batch_vs_alone_abs": correctness.BATCH_ATOL,
        "parity_with_keras_abs": correctness.PARITY_ATOL,
        "layouts_abs": correctness.LAYOUTS_ATOL,
        "topk_sum_eps": correctness.SUM_EPS,
        "rss_rejected_or_empty_mb": badinput.REJECTED_RSS_MB,
        "rss_single_image_mb": badinput.SINGLE_RSS_MB,
        "rss_batch_64": "half the smallest memory limit of the targets serving the layout",
    }


def machine() -> dict:
    import tensorflow as tf

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": memory_gb,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "nchw_runs_here": layouts.nchw_runs_here()[0],
        "onednn": onednn.state(),
        "loader": loader_name(),
    }


def loader_name() -> str:
    try:
        capi.library()
    except capi.CApiUnavailable as exc:
        return f"{serving.PYTHON_LOADER} only ({exc})"
    return serving.CAPI_LOADER


def _quantity_mb(quantity: str) -> float:
    m = re.match(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$", quantity)
    if not m:
        return 4096.0
    scale = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    return float(m[1]) * scale.get(m[2] or "", 1) / 2 ** 20


def batch_rss_bound_mb(config: Config, layout: str) -> float:
    limits = [_quantity_mb(t.resources.memory) for t in config.targets_for_layout(layout)]
    return round(min(limits) / 2, 0) if limits else 2048.0


@dataclass
class Run:
    """What one validation learns per layout and shares across layouts."""

    config: Config
    report: Report
    models_dir: Path | None = None
    source_file: Path | None = None  # --source: the file the export was made from, when not where model.yaml says
    use_capi: bool = True
    answers: dict = field(default_factory=dict)
    metas: dict = field(default_factory=dict)
    infos: dict = field(default_factory=dict)
    dirs: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)

    def guard(self, name: str, layout: str | None, fn: Callable, *args):
        """Run one check; a crash becomes a failed line instead of ending the validation."""
        try:
            return fn(*args)
        except Exception as exc:
            text = exc.message if isinstance(exc, tfs.ServingError) else tfs.error_summary(str(exc)) or type(exc).__name__
            self.report.add(name, layout, False, f"could not run: {type(exc).__name__}: {text[:300]}")
            return None

    def source(self, info: dict) -> reference.Found:
        """The source model the export's own record names (see tools/validate/reference.py), built once."""
        record = (info or {}).get("source") or {}
        key = repr((sorted(record.items()), str(self.config.model.source), str(self.source_file), str(self.models_dir)))
        if key not in _SOURCES:
            _SOURCES[key] = reference.find_source(info, self.config, self.source_file)
        return _SOURCES[key]

    def reference(self, info: dict, samples: list[Sample]) -> tuple[correctness.Reference | None, str]:
        found = self.source(info)
        if found.source is None:
            return None, found.where
        key = (id(found.source), tuple(info["input_size"]), info["preprocessing"], info["max_image_pixels"],
               info.get("jpeg_fast_downscale", True))
        if key not in self.references:
            self.references[key] = correctness.keras_reference(found.source, samples, info)
        return self.references[key], found.where


def _layout_of(path: Path) -> str:
    if path.parent.name in paths.LAYOUTS:
        return path.parent.name
    info = structure.read_export_info(path) if path.is_dir() else None
    if info and info.get("layout") in paths.LAYOUTS:
        return info["layout"]
    return str(path)


def _entries_from_paths(version_dirs: list[Path]) -> list[tuple[str, Path]]:
    entries, seen = [], set()
    for p in version_dirs:
        p = Path(p)
        layout = _layout_of(p)
        if layout in seen:
            raise UserError(f"two paths of layout {layout} given; validate one version of each layout at a time")
        seen.add(layout)
        entries.append((layout, p))
    return entries


def validate(config: Config, version: int | None = None, models_dir: Path | None = None,
             paths_: list[Path] | None = None, reports_dir: Path | None = None, *,
             echo: Callable[[Check], None] | None = None, write: bool = True, accept_not_run: bool = False,
             source_file: Path | None = None, use_capi: bool = True) -> Report:
    """Validate one version: `version` (default model.version) of both layouts under models_dir, or the
    version directories `paths_` (all of one version). Writes the report unless `write` is false or the
    version cannot be told from the directory names. `accept_not_run` lets checks that could not run here
    pass the report (they stay listed); `source_file` is the model/weights file the export came from when it
    is not where model.yaml says; `use_capi` False skips TF Serving's load path (reported as not run)."""
    import keras
    import tensorflow as tf

    start = time.monotonic()
    models_dir = Path(models_dir) if models_dir else paths.REPO_ROOT / paths.MODELS_DIR
    reports_dir = Path(reports_dir) if reports_dir else paths.REPO_ROOT / paths.REPORTS_DIR
    name = config.model.name
    if paths_:
        entries = _entries_from_paths([Path(p) for p in paths_])
        found = sorted({v for v in (structure.parse_version(p.name) for _, p in entries) if v is not None})
        if len(found) > 1:
            raise UserError(f"the paths are versions {', '.join(map(str, found))}; validate one version at a time")
        version = found[0] if found else None
        from_models_dir = False
    else:
        version = config.model.version if version is None else version
        entries = []
        for layout in paths.LAYOUTS:
            p = paths.version_dir(models_dir, name, layout, version)
            if p.exists() or p.is_symlink() or config.targets_for_layout(layout):
                entries.append((layout, p))
        from_models_dir = True
    report = Report(model=name, version=version, tensorflow_version=tf.__version__, keras_version=keras.__version__,
                    tolerances=tolerances(), machine=machine(), echo=echo, accept_not_run=accept_not_run)
    run = Run(config, report, models_dir=models_dir, source_file=source_file, use_capi=use_capi)
    for layout, p in entries:
        report.exports[layout] = ExportResult(path=structure.shown(p), digest=None)
    for layout, p in entries:
        check_parent = from_models_dir or p.parent.name in paths.LAYOUTS
        # --- issue 16: each layout under the oneDNN settings of the target serving it (tools/validate/settings.py)
        wanted = layout_settings.for_layout(config, layout)
        if wanted is not None and not wanted.here():
            from tools.validate import child

            child.run_in_child(run, layout, p, version, check_parent, wanted)
            continue
        _validate_layout(run, layout, p, version, check_parent=check_parent)
        if layout in run.dirs:  # it loaded: say what its checks ran under
            layout_settings.check(report, layout, wanted, "in this process")
    if all(lay in run.dirs for lay in paths.LAYOUTS):
        run.guard("layouts.weights", None, layouts.check_weights, report, run.dirs, run.infos)
        if all(run.metas.get(lay) is not None for lay in paths.LAYOUTS):
            run.guard("layouts.graphs", None, layouts.check_graphs, report, run.metas)
        bf16 = max(layout_settings.bf16_tolerance(config, lay) or 0.0 for lay in paths.LAYOUTS) or None
        run.guard("layouts.agree", None, layouts.check_layouts_agree, report, run.answers, bf16)
    report.seconds = time.monotonic() - start
    if write and version is not None:
        report.write(reports_dir)
    return report


def _validate_layout(run: Run, layout: str, path: Path, version: int | None, check_parent: bool) -> None:
    report, config = run.report, run.config
    if check_parent and path.parent.is_dir():
        structure.check_layout_dir(report, layout, path.parent)
    if not structure.check_version_dir(report, layout, path, version):
        return
    loadable = structure.check_files(report, layout, path)
    report.exports[layout].digest = structure.check_digest(report, layout, path, config, version)
    structure.check_symlinks(report, layout, path)
    info = structure.check_export_info(report, layout, path, config, version)
    run.infos[layout] = info
    try:
        meta = tfs.read_meta_graph(path)
    except Exception as exc:
        text = exc.message if isinstance(exc, tfs.ServingError) else str(exc)
        report.add("graph.read", layout, False, f"{paths.SAVED_MODEL_PB} is unreadable: {text[:200]}")
        meta = None
    if meta is not None:
        run.metas[layout] = meta
        run.guard("graph.tensorflow_version", layout, ops.check_tensorflow_version, report, layout, meta, config)
        run.guard("graph.ops", layout, ops.check_ops, report, layout, meta, config)
        run.guard("graph.layout", layout, ops.check_layout_guard, report, layout, meta, config)
    if not loadable:
        report.add("serving.load", layout, False,
                   f"not attempted: {paths.SAVED_MODEL_PB} or {paths.VARIABLES_DIR}/ is incomplete")
        return
    if layout in paths.LAYOUTS:
        run.dirs[layout] = path
    export = serving.check_load(report, layout, path, config.model.name, version, run.use_capi)
    if export is None:
        return
    try:
        _checks_on_loaded(run, layout, export, info)
    finally:
        export.close()


def _checks_on_loaded(run: Run, layout: str, export: serving.LoadedExport, info: dict | None) -> None:
    report = run.report
    if not serving.check_signatures(report, layout, export, info):
        report.add("serving.calls", layout, False, "request, warmup, correctness and bad-input checks not run: "
                                                   "the signatures are not the serving contract")
        return
    if info is None or any(k not in info for k in ("input_size", "top_k", "num_classes")):
        report.add("serving.calls", layout, False, "correctness checks not run: export_info.json is missing or incomplete")
        return
    runs_nchw, reason = layouts.nchw_runs_here()
    if layout == "channels_first" and not runs_nchw:
        report.not_run("serving.calls", layout, f"request, warmup, correctness and bad-input checks: {reason}; "
                                                "loaded and inspected only")
        return
    _call_checks(run, layout, export, info)


def _call_checks(run: Run, layout: str, export: serving.LoadedExport, info: dict) -> None:
    report, config = run.report, run.config
    input_size, k, num_classes = tuple(info["input_size"]), int(info["top_k"]), int(info["num_classes"])
    samples = correctness_samples(input_size)
    bf16 = layout_settings.bf16_tolerance(config, layout)  # a `math: bf16` target's tolerance against fp32 answers
    run.guard("serving.loaders_agree", layout, serving.check_loaders_agree, report, layout, export,
              [s.data for s in samples[:FORMAT_SAMPLES]])
    run.guard("serving.request_formats", layout, serving.check_request_formats, report, layout, export,
              [s.data for s in samples[:FORMAT_SAMPLES]])
    run.guard("serving.warmup", layout, serving.check_warmup, report, layout, export)
    answers = run.guard("correctness.outputs", layout, correctness.run_samples, export, samples)
    if answers is not None:
        labels = correctness.read_labels(export.path)
        correctness.check_outputs(report, layout, answers, labels, num_classes, k, samples)
        run.guard("correctness.batching", layout, correctness.check_batching, report, layout, export, samples, answers,
                  bf16)
        run.guard("correctness.repeat", layout, correctness.check_repeat, report, layout, export, samples, answers)
        check_parity(run, layout, info, samples, answers, labels)
        run.answers[layout] = answers
    # The golden set the clusters replay after every sync (tools/goldenset, issue 11).
    from tools.goldenset.record import record_layout

    run.guard("golden_set.recorded", layout, record_layout, report, layout, export, config, input_size)
    # Issue 10: top-1 accuracy on model.samples_dir's labelled images, beside the Keras model's own (the same
    # source model the parity check uses: the one the export's own record names).
    if config.model.samples_dir is not None:
        found = run.source(info)
        if found.source is None:
            report.not_run("accuracy.samples", layout, f"no Keras model to compare with: {found.where}")
        else:
            run.guard("accuracy.samples", layout, accuracy.check_accuracy, report, layout, export, info, config,
                      lambda: found.source)
    run.guard("badinput", layout, badinput.check_bad_inputs, report, layout, export, input_size, k,
              batch_rss_bound_mb(config, layout), info, bf16)


def check_parity(run: Run, layout: str, info: dict, samples: list[Sample], answers, labels: list[bytes]) -> None:
    """The export's answers against its source Keras model's, found from the export's own record (or not run,
    naming where it looked)."""
    found = run.guard("correctness.parity", layout, run.reference, info, samples)
    if found is None:
        return
    ref, where = found
    if ref is None:
        run.report.not_run("correctness.parity", layout, f"no reference: {where}; checked instead: the export's "
                                                         "own answers, both layouts' weights and answers")
    else:
        run.guard("correctness.parity", layout, correctness.check_parity, run.report, layout, answers, ref, info,
                  labels, where, layout_settings.bf16_tolerance(run.config, layout))


def discover_versions(config: Config, models_dir: Path) -> list[int]:
    versions, strays = set(), []
    for layout in paths.LAYOUTS:
        ldir = paths.layout_dir(models_dir, config.model.name, layout)
        scan = structure.scan_layout_dir(ldir)
        versions |= set(scan.versions)
        strays += [f"{layout}/{e}" for e in scan.other + scan.temporary]
    if not versions:
        where = paths.version_dir(models_dir, config.model.name, "<layout>", 0).parent
        extra = f"; found only {', '.join(strays)}, which {'is' if len(strays) == 1 else 'are'} not a version" \
            if strays else ""
        raise UserError(f"no exported version of {config.model.name} in {where}{extra}: run `make export` first")
    return sorted(versions)


def check_version_exists(config: Config, version: int, models_dir: Path) -> None:
    """A usage error (nothing written) when no layout of `version` was exported."""
    found = [lay for lay in paths.LAYOUTS if paths.version_dir(models_dir, config.model.name, lay, version).exists()]
    if not found:
        try:
            have = discover_versions(config, models_dir)
        except UserError:
            have = []
        raise UserError(f"version {version} of {config.model.name} is not exported in "
                        f"{Path(models_dir) / config.model.name}"
                        + (f" (exported: {', '.join(map(str, have))})" if have else "")
                        + f": run `make export VERSION={version}` first")


def validate_all(config: Config, models_dir: Path | None = None, reports_dir: Path | None = None, *,
                 echo: Callable[[Check], None] | None = None, write: bool = True, **kwargs) -> list[Report]:
    """Validate every exported version of model.name under models_dir; one report per version."""
    models_dir = Path(models_dir) if models_dir else paths.REPO_ROOT / paths.MODELS_DIR
    reports = []
    for version in discover_versions(config, models_dir):
        reports.append(validate(config, version, models_dir, reports_dir=reports_dir, echo=echo, write=write,
                                **kwargs))
    return reports
