"""Validate exported versions exactly as TF Serving will call them, before anything is deployed.

    python -m tools validate                      # model.version of model.name (both layouts)
    python -m tools validate --version 3          # version 3
    python -m tools validate --all                # every exported version
    python -m tools validate DIR [DIR ...]        # these version directories (<...>/<layout>/<version>)

Each export is loaded through TF Serving's own loader (the C API's TF_LoadSessionFromSavedModel) and through
Python's, and called as TF Serving calls it. Prints one line per check (✓ passed, ✗ failed, ○ not run, with
its figures) and writes build/reports/validate-<name>-v<N>.json and .md; the markdown is the body of the
version-bump pull request. Exit status 0 only if every check passed; a check that could not run here (○)
fails the report unless --accept-not-run is given. A version that was not exported is a usage error (exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import paths
from tools.cliargs import positive_int
from tools.errors import UserError, run_cli
from tools.validate.report import ACCEPT_FLAG



def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="version directories to validate (default: every version under --models-dir)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=positive_int, help="validate this version (default: model.version)")
    which.add_argument("--all", action="store_true", help="validate every exported version")
    p.add_argument("--name", help="the model name the export was made under (`python -m export --name`), when it "
                                  "is not model.yaml's model.name")
    p.add_argument("--accept-not-run", action="store_true",
                   help="let checks that could not run on this machine (○) pass the report; they stay listed "
                        "in it, and the bump shows them")
    p.add_argument("--source", type=Path, metavar="FILE",
                   help="the model or weights file the export was made from, when it is neither where model.yaml "
                        "says nor in build/sources (accepted only if its sha256 is the one the export records)")
    p.add_argument("--models-dir", type=Path, help=f"where <name>/<layout>/<version>/ are (default: {paths.MODELS_DIR})")
    p.add_argument("--reports-dir", type=Path, help=f"where reports are written (default: {paths.REPORTS_DIR})")
    p.add_argument("--config", type=Path, help="model.yaml to read (default: the repository's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def body() -> int:
        from tools.config import load_config

        if args.paths and (args.version or args.all):
            raise UserError("give either --version/--all or version directories, not both")
        if args.source is not None and not args.source.is_file():
            raise UserError(f"--source {args.source}: " + ("is a directory, not a model file" if args.source.is_dir()
                                                          else "no such file"))
        config = load_config(args.config)
        if args.name:
            from dataclasses import replace

            from tools.config import _NAME_RE

            if not _NAME_RE.match(args.name):
                raise UserError(f"--name {args.name!r} is not a model name here (lower-case letters, digits and '-', "
                                "at most 40, as model.yaml's model.name)")
            config = replace(config, model=replace(config.model, name=args.name))
        from tools.validate import runner  # TensorFlow loads only after arguments parse
        from tools.validate.structure import parse_version

        def echo(check):
            print(check.line(), flush=True)

        def header(version, where: str):
            print(f"\nvalidating {config.model.name} v{version} ({where})", flush=True)

        reports = []
        options = {"accept_not_run": args.accept_not_run, "source_file": args.source}
        if args.paths:
            groups: dict = {}
            for p in args.paths:
                groups.setdefault(parse_version(p.name), []).append(p)
            for version, group in groups.items():
                header(version, ", ".join(str(p) for p in group))
                reports.append(runner.validate(config, paths_=group, models_dir=args.models_dir,
                                               reports_dir=args.reports_dir, echo=echo, **options))
        else:
            models_dir = args.models_dir or paths.REPO_ROOT / paths.MODELS_DIR
            if args.all:
                versions = runner.discover_versions(config, models_dir)
            else:
                versions = [args.version or config.model.version]
                runner.check_version_exists(config, versions[0], models_dir)
            for version in versions:
                header(version, str(Path(models_dir) / config.model.name))
                reports.append(runner.validate(config, version, models_dir, reports_dir=args.reports_dir, echo=echo,
                                               **options))
        reports_dir = args.reports_dir or paths.REPO_ROOT / paths.REPORTS_DIR
        print()
        for r in reports:
            print(r.summary_line())
            if r.not_run_checks() and not r.passed:
                print(f"  {len(r.not_run_checks())} checks did not run here (○): run where they can, or accept "
                      f"them with `make validate ARGS={ACCEPT_FLAG}` (the report and the pull request list them)")
            if r.version is not None:
                print(f"  report: {paths.validation_report(reports_dir, r.model, r.version, 'md')} (and .json)")
            else:
                print("  no report written: the directory name is not a version")
        return 0 if reports and all(r.passed for r in reports) else 1

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
