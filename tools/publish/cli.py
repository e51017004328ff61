"""`python -m tools publish [--version N]`: upload an exported, validated version to the model store."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools import paths
from tools.config import load_config
from tools.cliargs import positive_int
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import publish

    p = argparse.ArgumentParser(
        prog="python -m tools publish",
        description=publish.__doc__.split("\n\n")[0],
        epilog="Refuses unless the export is complete and its validation report passed for exactly these bytes. "
        "Never overwrites a published version; re-publishing identical content does nothing; an interrupted "
        "upload is resumed by running the command again.",
    )
    p.add_argument("--version", type=positive_int, default=None, help="model version to publish (default: model.version)")
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    p.add_argument("--models-dir", type=Path, default=None, help=f"exports to read (default: {paths.MODELS_DIR})")
    p.add_argument("--reports-dir", type=Path, default=None, help=f"validation reports (default: {paths.REPORTS_DIR})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import publish

        config = load_config(args.config)
        publish.publish(config, args.version, models_dir=args.models_dir, reports_dir=args.reports_dir)
        return 0

    return run_cli(body)
