"""`python -m tools status`: sync, health, rollout and served model version of every cluster (reads only)."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools.cliargs import add_cluster_access, require_kubernetes_client
from tools.config import load_config
from tools.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import status

    p = argparse.ArgumentParser(prog="python -m tools status", description=status.__doc__.split("\n\n")[0],
                                epilog="Rows marked * are not converged (not Synced, not Healthy, or not serving "
                                "the version model.yaml pins); the notes under the table say why.")
    add_cluster_access(p, "kubeconfig context for an Argo CD destination (its name or server URL); repeatable. "
                          "Default: the context whose cluster server is the destination server")
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import status

        require_kubernetes_client()
        print(status.status(load_config(args.config), kubeconfig=args.kubeconfig, context=args.context,
                            cluster_contexts=dict(args.cluster)), end="")
        return 0

    return run_cli(body)
