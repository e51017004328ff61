"""Validate one layout in a fresh process started with its target's oneDNN settings, for tools/validate/runner.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once per process (and a `math: bf16` target needs its rewrite), so a layout
whose target asks for other values than the validating process has runs here: `python -m tools.validate.child JOB`
reads the job (a pickle: the Config and the layout's arguments) written by `run_in_child`, runs the layout's checks
exactly as the runner does in-process, and prints its checks, answers and golden-set entry as JSON on the last line.
"""
from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

from tools import onednn, paths


def _answers_to_json(a) -> dict | None:
    if a is None:
        return None
    return {"classes": a.classes.tolist(), "probabilities": a.probabilities.tolist(),
            "labels": [[bytes(x).decode("latin-1") for x in row] for row in a.labels.tolist()]}


def _answers_from_json(d: dict | None):
    import numpy as np

    from tools.validate.correctness import Answers

    if d is None:
        return None
    return Answers(np.array(d["classes"], dtype=np.int64), np.array(d["probabilities"], dtype=np.float32),
                   np.array([[x.encode("latin-1") for x in row] for row in d["labels"]], dtype=object))


def child_main(job_file: str) -> dict:
    """In the child: validate the job's layout, return what the parent merges into its report."""
    job = pickle.loads(Path(job_file).read_bytes())
    from tools.validate import runner, settings
    from tools.validate.report import ExportResult, Report

    layout = job["layout"]
    report = Report(model=job["config"].model.name, version=job["version"])
    report.exports[layout] = ExportResult(path=job["shown"], digest=None)
    run = runner.Run(job["config"], report, models_dir=job["models_dir"], source_file=job["source_file"],
                     use_capi=job["use_capi"])
    runner._validate_layout(run, layout, Path(job["path"]), job["version"], job["check_parent"])
    if layout in run.dirs:
        settings.check(report, layout, job["wanted"], "in a child process started with the target's settings")
    return {"checks": [c.to_dict() for c in report.checks], "digest": report.exports[layout].digest,
            "answers": _answers_to_json(run.answers.get(layout)), "golden_set": report.golden_set,
            "loaded": layout in run.dirs, "machine_onednn": onednn.state()}


def run_in_child(run, layout: str, path: Path, version: int | None, check_parent: bool, wanted) -> None:
    """In the parent: validate `layout` in a child under `wanted` (settings.LayoutSettings); merge the result."""
    from tools import proc
    from tools.validate import structure, tfs_formats as tfs
    from tools.validate.report import Check

    report = run.report
    job = {"config": run.config, "layout": layout, "path": str(path), "version": version,
           "check_parent": check_parent, "models_dir": run.models_dir, "source_file": run.source_file,
           "use_capi": run.use_capi, "wanted": wanted, "shown": report.exports[layout].path}
    with tempfile.TemporaryDirectory(prefix=paths.TMP_PREFIX + "validate-") as tmp:
        job_file = Path(tmp) / "job.pickle"
        job_file.write_bytes(pickle.dumps(job))
        result = proc.run([sys.executable, "-m", "tools.validate.child", str(job_file)], cwd=paths.REPO_ROOT,
                          env={**onednn.child_env(wanted.env), "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False,
                          echo=False, timeout=3600)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        report.add("serving.settings", layout, False, f"the child process validating {layout} under "
                                                       f"{wanted.describe()} failed: {tail[:300]}")
        return
    data = json.loads(lines[-1])
    for c in data["checks"]:
        report._add(Check(c["name"], c["layout"], c["passed"], c["detail"], c["figures"], status=c["status"]))
    report.exports[layout].digest = data["digest"]
    for key, value in (data["golden_set"] or {}).items():
        if isinstance(value, dict):
            report.golden_set.setdefault(key, {}).update(value)
        else:
            report.golden_set.setdefault(key, value)
    report.machine.setdefault("onednn_per_layout", {})[layout] = data["machine_onednn"]
    info = structure.read_export_info(path) if path.is_dir() else None
    run.infos[layout] = info
    try:
        run.metas[layout] = tfs.read_meta_graph(path)
    except Exception:  # the child reported it as graph.read
        pass
    if data["loaded"] and layout in paths.LAYOUTS:
        run.dirs[layout] = path
    answers = _answers_from_json(data["answers"])
    if answers is not None:
        run.answers[layout] = answers


def main(argv: list[str] | None = None) -> int:
    onednn.apply_child_env()  # before TensorFlow loads: drop what the target wants unset
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(child_main(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
