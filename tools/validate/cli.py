"""Validate exported versions exactly as TF Serving will call them, before anything is deployed.

    python -m tools validate                      # every exported version of model.name (both layouts)
    python -m tools validate --version 3          # version 3 only
    python -m tools validate DIR [DIR ...]        # these version directories (<...>/<layout>/<version>)

Prints one line per check (✓/✗ with its figures) and writes build/reports/validate-<name>-v<N>.json and .md;
the markdown is the body of the version-bump pull request. Exit status 0 only if every check passes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import paths
from tools.cliargs import positive_int
from tools.errors import UserError, run_cli



def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="version directories to validate (default: every version under --models-dir)")
    p.add_argument("--version", type=positive_int, help="validate this version only (both layouts)")
    p.add_argument("--models-dir", type=Path, help=f"where <name>/<layout>/<version>/ are (default: {paths.MODELS_DIR})")
    p.add_argument("--reports-dir", type=Path, help=f"where reports are written (default: {paths.REPORTS_DIR})")
    p.add_argument("--config", type=Path, help="model.yaml to read (default: the repository's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def body() -> int:
        from tools.config import load_config

        if args.paths and args.version:
            raise UserError("give either --version or version directories, not both")
        config = load_config(args.config)
        from tools.validate import runner  # TensorFlow loads only after arguments parse
        from tools.validate.structure import parse_version

        def echo(check):
            print(check.line(), flush=True)

        def header(version, where: str):
            print(f"\nvalidating {config.model.name} v{version} ({where})", flush=True)

        reports = []
        if args.paths:
            groups: dict = {}
            for p in args.paths:
                groups.setdefault(parse_version(p.name), []).append(p)
            for version, group in groups.items():
                header(version, ", ".join(str(p) for p in group))
                reports.append(runner.validate(config, paths_=group, models_dir=args.models_dir,
                                               reports_dir=args.reports_dir, echo=echo))
        else:
            models_dir = args.models_dir or paths.REPO_ROOT / paths.MODELS_DIR
            versions = [args.version] if args.version else runner.discover_versions(config, models_dir)
            for version in versions:
                header(version, str(Path(models_dir) / config.model.name))
                reports.append(runner.validate(config, version, models_dir, reports_dir=args.reports_dir, echo=echo))
        reports_dir = args.reports_dir or paths.REPO_ROOT / paths.REPORTS_DIR
        print()
        for r in reports:
            print(r.summary_line())
            if r.version is not None:
                print(f"  report: {paths.validation_report(reports_dir, r.model, r.version, 'md')} (and .json)")
            else:
                print("  no report written: the directory name is not a version")
        return 0 if reports and all(r.passed for r in reports) else 1

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
