"""`python -m tools profile [IMAGE|DIR ...] [sweep options] [endpoint options]`: argument parsing only."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools import paths
from tools.cliargs import positive_int
from tools.client.cli import add_endpoint_arguments, endpoint_from_args
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import profile

    p = argparse.ArgumentParser(
        prog="python -m tools profile",
        description=profile.__doc__.split("\n\n")[0],
        epilog="Every point is bounded by --requests and --max-seconds, so the sweep's worst case is "
        "points x max-seconds. Without images it sends --samples generated photo-like JPEGs.",
    )
    p.add_argument("images", nargs="*", help="image files and directories to send (default: generated samples)")
    p.add_argument("--samples", type=positive_int, default=8, metavar="N",
                   help="generated JPEGs to cycle through when no images are given (default: 8)")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="comma-separated (default: 1,2,4,8,16,32)")
    p.add_argument("--concurrency", default="1,2,4", help="concurrent requests, comma-separated (default: 1,2,4)")
    p.add_argument("--requests", type=positive_int, default=20, help="timed requests per point (default: 20)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="time limit per point (default: 10)")
    p.add_argument("--warmup", type=int, default=1, help="untimed requests per batch size first (default: 1)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"folder for {paths.PROFILE_CSV} and {paths.PROFILE_PNG} (default: {paths.PROFILE_DIR})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_endpoint_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import profile

        endpoint = endpoint_from_args(args)
        out = profile.profile_to_files(
            endpoint,
            args.images,
            samples=args.samples,
            batch_sizes=profile.parse_sizes(args.batch_sizes, "--batch-sizes"),
            concurrencies=profile.parse_sizes(args.concurrency, "--concurrency"),
            requests=args.requests,
            max_seconds=args.max_seconds,
            warmup=args.warmup,
            out_dir=args.out,
            progress=not args.no_progress,
        )
        print(out)
        return 0

    return run_cli(body)
