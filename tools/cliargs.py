"""Argument types and option groups shared by the CLIs, so a bad value reads the same everywhere."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def cluster_context(text: str) -> tuple[str, str]:
    """CLUSTER=CONTEXT: a kubeconfig context for an Argo CD destination."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected CLUSTER=CONTEXT, got {text!r}")
    return key, value


def add_cluster_access(p: argparse.ArgumentParser, cluster_help: str) -> None:
    """--kubeconfig, --context (the cluster Argo CD runs in) and repeatable --cluster CLUSTER=CONTEXT, as
    `make status` and `make rollback` read the clusters."""
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", default=None, help="context of the cluster Argo CD runs in (default: current)")
    p.add_argument("--cluster", action="append", type=cluster_context, default=[], metavar="CLUSTER=CONTEXT",
                   help=cluster_help)


def require_kubernetes_client() -> None:
    """The clients that read clusters need the kubernetes package (in requirements.txt)."""
    from tools.errors import UserError

    try:
        import kubernetes  # noqa: F401
    except ImportError:
        raise UserError("the kubernetes Python client is not installed: run `make venv`") from None
