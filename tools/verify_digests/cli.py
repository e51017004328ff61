"""`python -m tools verify-digests`: re-export model.version from the pinned source; fail unless the digests
equal the pinned ones."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools.config import load_config
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import verify_digests

    p = argparse.ArgumentParser(prog="python -m tools verify-digests",
                                description=verify_digests.__doc__.split("\n\n")[0],
                                epilog="Fails (exit 2) naming the layout and both digests when a re-derived digest "
                                "differs, and with both hashes when the source file is not the pinned one.")
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    p.add_argument("--allow-unpinned", action="store_true",
                   help="succeed when model.digests pins nothing yet (a fresh repository), saying so")
    p.add_argument("--verbose", action="store_true", help="the export's progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools.verify_digests import verify_digests

        verify_digests(load_config(args.config), allow_unpinned=args.allow_unpinned, verbose=args.verbose)
        return 0

    return run_cli(body)
