"""`python -m tools doctor`: check a live cluster before the first sync (reads only)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import paths
from tools.cliargs import require_kubernetes_client
from tools.config import load_config
from tools.errors import UserError, run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools import doctor

    p = argparse.ArgumentParser(prog="python -m tools doctor", description=doctor.__doc__.split("\n\n")[0],
                                epilog='Every request is a GET. Exit 1 if any check fails (a warning, "!", does not).')
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", default=None, help="context of the cluster to check (default: the current one)")
    p.add_argument("--argocd-context", default=None,
                   help="context of the cluster Argo CD runs in, if not the checked one")
    p.add_argument("--target", default=None, help="model.yaml target this cluster gets (default: the GPU target "
                   "when the cluster has allocatable nvidia.com/gpu, else the CPU target)")
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    p.add_argument("--repo-root", type=Path, default=paths.REPO_ROOT, help="checkout whose overlays to use")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import doctor
        from tools.doctor.cluster import Cluster

        require_kubernetes_client()
        from kubernetes import config as k8s_config

        def connect(context):
            try:
                return Cluster(k8s_config.new_client_from_config(config_file=args.kubeconfig, context=context))
            except Exception as exc:  # ConfigException, ValueError, OSError from the loader
                raise UserError(f"cannot use kubeconfig context {context or '(current)'!r}: {exc}") from None

        config = load_config(args.config)
        cluster = connect(args.context)
        argocd = connect(args.argocd_context) if args.argocd_context else None
        target, findings = doctor.run(config, cluster, argocd, args.target, args.repo_root)
        print(f"doctor: {args.context or 'current context'}, target {target}")
        for f in findings:
            print(f.line())
        failed = [f for f in findings if f.failed]
        warned = [f for f in findings if f.warning and not f.ok]
        passed = len(findings) - len(failed) - len(warned)
        print(f"{passed} passed, {len(warned)} warning{'s' if len(warned) != 1 else ''}, {len(failed)} failed",
              file=sys.stderr)
        return 1 if failed else 0

    return run_cli(body)
