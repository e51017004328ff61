"""Replay the golden set against any TF Serving endpoint, as the PostSync Job does after every sync.

    make smoke URL=http://staging.example.com:8501 [TARGET=cpu] [VERSION=N]
    python -m tools smoke --url URL [--target cpu] [--version N] [--deadline 60]

The golden set is the target's committed one (k8s/overlays/<target>/golden-set/), or with --version N (a
version not bumped yet) the one `make validate` recorded for it in build/reports, with the target's
tolerance from model.yaml: so a team can check a staging endpoint before merging the bump. The check itself
is k8s/components/smoke-test/smoke_test.py, loaded and run here, the one script the Job runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import tempfile
from pathlib import Path

from tools import paths
from tools.config import Config, load_config
from tools.errors import UserError, run_cli
from tools.goldenset import overlay

SCRIPT = f"{paths.COMPONENTS_DIR}/smoke-test/smoke_test.py"


def load_script():
    """This repository's smoke-test script as a module (standard library only, so importing it is cheap)."""
    spec = importlib.util.spec_from_file_location("tf_serving_smoke_test", paths.REPO_ROOT / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden_files(config: Config, repo_root: Path, target_name: str, version: int | None) -> dict[str, str]:
    """{file name: text} of the golden set to replay; UserError when there is none."""
    if target_name not in config.targets:
        raise UserError(f"--target {target_name!r} is not a target in model.yaml ({', '.join(config.targets)})")
    target = config.targets[target_name]
    out_dir = f"{paths.OVERLAYS_DIR}/{target_name}"
    if version is None:
        directory = overlay.golden_dir(repo_root, out_dir)
        try:
            return {name: (directory / name).read_text()
                    for name in (paths.GOLDEN_EXPECTED_FILE, paths.GOLDEN_IMAGES_FILE)}
        except OSError:
            raise UserError(f"{directory} has no golden set: run `make render`, or pass --version N "
                            "for a validated version") from None
    report_path = paths.validation_report(Path(repo_root) / paths.REPORTS_DIR, config.model.name, version, "json")
    import json

    try:
        golden = json.loads(report_path.read_text()).get("golden_set") or {}
    except (OSError, ValueError, AttributeError):
        raise UserError(f"no readable validation report of {config.model.name} v{version} at {report_path}: "
                        f"run `make validate VERSION={version}`") from None
    if target.layout not in golden.get("layouts", {}):
        raise UserError(f"{report_path} holds no golden set for {target.layout} (the {target_name} target): "
                        f"run `make validate VERSION={version}`")
    versioned = dataclasses.replace(config, model=dataclasses.replace(config.model, version=version))
    expected, images = overlay.render_texts(golden, versioned, target)
    return {paths.GOLDEN_EXPECTED_FILE: expected, paths.GOLDEN_IMAGES_FILE: images}


def smoke(url: str, target: str = "cpu", version: int | None = None, deadline: float = 60.0, timeout: float = 60.0,
          repo_root: Path = paths.REPO_ROOT, config: Config | None = None) -> int:
    """Run the smoke-test script against `url`; its exit status (0 passed, 1 failed)."""
    config = config or load_config(Path(repo_root) / paths.MODEL_YAML)
    files = golden_files(config, Path(repo_root), target, version)
    import json

    model_version = json.loads(files[paths.GOLDEN_EXPECTED_FILE]).get("version") or config.model.version
    with tempfile.TemporaryDirectory(prefix="golden-set-") as scratch:
        for name, text in files.items():
            (Path(scratch) / name).write_text(text)
        return load_script().main(["--url", url, "--model", config.model.name, "--version",
                                            str(model_version), "--golden", scratch, "--deadline", str(deadline),
                                            "--timeout", str(timeout)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools smoke", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="TF Serving REST base URL, e.g. http://localhost:8501")
    p.add_argument("--target", default="cpu", help="whose golden set and tolerance (default: cpu)")
    p.add_argument("--version", type=int, default=None,
                   help="replay the golden set validation recorded for version N (build/reports) instead of "
                        "the committed one")
    p.add_argument("--deadline", type=float, default=60.0, help="seconds to keep retrying an unavailable server")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = p.parse_args(argv)
    return run_cli(lambda: smoke(args.url, args.target, args.version, args.deadline, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
