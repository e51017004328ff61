"""`python -m tools bump N`: open the pull request that moves every cluster to model version N."""
from __future__ import annotations

import argparse

from tools import paths
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import bump

    p = argparse.ArgumentParser(prog="python -m tools bump", description=bump.__doc__.split("\n\n")[0],
                                epilog="Refuses with nothing changed on a dirty worktree, a version not greater "
                                "than model.version, a missing export or validation report, or an unpublished "
                                "version. Any failure later (check, push, gh) is undone completely.")
    p.add_argument("version", type=int, help="the new model version (greater than model.version; equal to it for "
                   "the first pin, while model.digests is empty)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the model.yaml and rendered diffs, the commit and the pull request; write nothing")
    p.add_argument("--no-publish-check", dest="publish_check", action="store_false",
                   help="do not require the version in the model store (it is published elsewhere, e.g. by CI)")
    p.add_argument("--remote", default="origin", help="git remote to push the branch to (default: origin)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import bump

        bump.bump(paths.REPO_ROOT, args.version, dry_run=args.dry_run, publish_check=args.publish_check,
                  remote=args.remote)
        return 0

    return run_cli(body)
