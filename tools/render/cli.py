"""`python -m tools render`: write k8s/overlays/<target>/ (and k8s/argocd/) from model.yaml and tools/templates/."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools import paths
from tools.errors import run_cli
from tools.render import drift_details, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools render",
        description="Render the Kustomize overlays (one per target in model.yaml) and the Argo CD objects from "
        "model.yaml and tools/templates/. Rendered files are committed; `make check` fails when they drift. "
        "A bad model.yaml is reported with its key path and nothing is written.",
    )
    parser.add_argument("--config", metavar="PATH", help="the model.yaml to render from (default: REPO_ROOT/model.yaml)")
    parser.add_argument("--repo-root", metavar="DIR", default=str(paths.REPO_ROOT),
                        help="repository to render into (default: this checkout)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the files that differ from a fresh render and exit 1 if any do")
    parser.add_argument("--no-golden", action="store_true",
                        help=f"do not rewrite the golden files of the built overlays ({paths.GOLDEN_DIR})")
    args = parser.parse_args(argv)

    def body() -> int:
        root = Path(args.repo_root)
        if args.check:
            differing = drift_details(root, args.config)
            for rel, state in differing:
                print(f"{state}: {rel}")
            if not differing:
                print("rendered files match model.yaml")
            return 1 if differing else 0
        changed = render(root, args.config)
        # The golden files show a reviewer what every cluster receives; they follow the render so that a
        # model.yaml change is one `make render` and one commit, never a red `make test` afterwards.
        if (root / paths.GOLDEN_DIR).is_dir() and not args.no_golden:
            from tools.check import golden

            changed += golden.write(root, args.config)
        for rel in changed:
            print(f"rendered {rel}" if (root / rel).exists() else f"removed {rel}")
        if not changed:
            print("rendered files already match model.yaml")
        return 0

    return run_cli(body)
