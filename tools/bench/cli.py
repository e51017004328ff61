"""`python -m tools bench [--quick] [--out DIR] [--only SECTIONS] [--rounds N] [--onednn-rounds N] [--config model.yaml]`: argument parsing only."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools import paths
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import bench

    p = argparse.ArgumentParser(
        prog="python -m tools bench",
        description=bench.__doc__.split("\n\n")[0],
        epilog="Numbers are measured, never asserted: read the report's verdicts against the targets. "
        "Run it on a quiet machine; the report records the load average at start and end.",
    )
    p.add_argument("--out", type=Path, default=None, help=f"report folder (default: {paths.BENCH_DIR})")
    p.add_argument("--quick", action="store_true", help="tiny counts: exercises every code path, numbers mean nothing")
    p.add_argument("--only", default=None, metavar="SECTIONS",
                   help=f"comma-separated subset of {','.join(bench.SECTIONS)} (default: all)")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="interleaved rounds of the throughput and phone-photo sections (default 7 and 5); more "
                        "rounds resolve smaller differences")
    p.add_argument("--onednn-rounds", type=int, default=None, metavar="N",
                   help="rounds of fresh processes per oneDNN setting (default 3); each round runs every setting "
                        "once, interleaved")
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--docs", type=Path, default=None, metavar="DIR",
                   help=f"also copy the plots here (make bench: {paths.BENCH_DOCS_DIR}); ignored with --quick")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import bench
        from tools.config import load_config

        config = load_config(args.config)
        sections = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else bench.SECTIONS
        data = bench.run_bench(config, args.out, quick=args.quick, sections=sections, progress=not args.no_progress,
                               docs_dir=args.docs, rounds=args.rounds, onednn_rounds=args.onednn_rounds)
        for v in data["verdicts"]:
            mark = "met   " if v["met"] else "MISSED"
            print(f"{mark} {v['what']}: {v['median']:.3f}{v['unit']} (target {v['target']})")
        return 0

    return run_cli(body)
