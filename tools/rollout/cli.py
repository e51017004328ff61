"""`python -m tools rollback`: open the pull request that reverts the last model bump."""
from __future__ import annotations

import argparse

from tools import paths
from tools.cliargs import add_cluster_access
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools.rollout import rollback

    p = argparse.ArgumentParser(prog="python -m tools rollback", description=rollback.__doc__.split("\n\n")[0],
                                epilog="Refuses with nothing changed on a dirty worktree, when there is no bump to "
                                "revert, when the last version change is already a rollback, or when the branch "
                                "exists. Any failure later (revert conflict, check, push, gh) is undone completely.")
    p.add_argument("--dry-run", action="store_true", help="print the commit and the pull request; write nothing")
    p.add_argument("--remote", default="origin", help="git remote to push the branch to (default: origin)")
    p.add_argument("--no-evidence", dest="evidence", action="store_false",
                   help="do not read the clusters for failed canary analyses (`make status`) to quote in the body")
    add_cluster_access(p, "kubeconfig context for an Argo CD destination, as for `make status`; repeatable")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools.config import load_config
        from tools.rollout import rollback

        evidence = None
        if args.evidence:
            evidence = rollback.cluster_evidence(load_config(paths.REPO_ROOT / paths.MODEL_YAML),
                                                 kubeconfig=args.kubeconfig, context=args.context,
                                                 cluster_contexts=dict(args.cluster))
        rollback.rollback(paths.REPO_ROOT, dry_run=args.dry_run, remote=args.remote, evidence=evidence)
        return 0

    return run_cli(body)
