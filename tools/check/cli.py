"""`python -m tools check`: render drift, kustomize builds, schema and policy checks; one line per check."""
from __future__ import annotations

import argparse
import sys

from tools import paths
from tools.check import run_checks
from tools.errors import run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools check",
        description="Fail if the committed rendered files differ from a fresh render of model.yaml, if kustomize "
        "cannot build an overlay (or k8s/argocd), if a built object is not valid on the Kubernetes versions of "
        "tools/check/schema.py (strictly: unknown fields fail), or if a policy of tools/check/policies.py does "
        "not hold. Prints one ✓/✗ line per check; exits 1 if any fails.",
    )
    parser.add_argument("--config", metavar="PATH", help="the model.yaml to check against (default: REPO_ROOT/model.yaml)")
    parser.add_argument("--repo-root", metavar="DIR", default=str(paths.REPO_ROOT),
                        help="repository to check (default: this checkout)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the detail of passing checks too")
    args = parser.parse_args(argv)

    def body() -> int:
        results = run_checks(args.repo_root, args.config)
        for result in results:
            print(f"{'✓' if result.passed else '✗'} {result.name}")
            if result.detail and (args.verbose or not result.passed):
                for line in result.detail.splitlines():
                    print(f"    {line}")
        failed = [r for r in results if not r.passed]
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
        return 1 if failed else 0

    return run_cli(body)
