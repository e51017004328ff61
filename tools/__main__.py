"""`python -m tools <command> [options]`: one entry point for every tool; each command's --help has the rest."""
from __future__ import annotations

import importlib
import sys

from tools import onednn

# command -> (module with main(argv), one-line summary)
COMMANDS = {
    "validate": ("tools.validate.cli", "check exported versions exactly as TF Serving will call them"),
    "render": ("tools.render.cli", "render the Kustomize overlays and Argo CD objects from model.yaml"),
    "check": ("tools.check.cli", "render drift, kustomize build, schema and policy checks"),
    "publish": ("tools.publish.cli", "upload a validated version of both layouts to the model store"),
    "bump": ("tools.bump.cli", "open a pull request that bumps the served model version"),
    "verify-digests": ("tools.verify_digests.cli", "re-export model.version from the pinned source; digests must match"),
    "status": ("tools.status.cli", "sync, health and served model version per cluster"),
    "doctor": ("tools.doctor.cli", "check a live cluster is ready for the first sync (read-only)"),
    "client": ("tools.client.cli", "send images to TF Serving and print top-k labels"),
    "profile": ("tools.profile.cli", "latency/throughput sweep over batch sizes and concurrency"),
    "bench": ("tools.bench.cli", "benchmark the servable and write a report"),
    "smoke": ("tools.goldenset.replay", "replay the golden set against a TF Serving endpoint (make smoke)"),
    # issue 14: canary rollouts
    "rollback": ("tools.rollout.cli", "open a pull request that reverts the last model bump"),
}


def usage() -> str:
    lines = ["usage: python -m tools <command> [options]", "", "commands:"]
    lines += [f"  {name:<14} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`python -m tools <command> --help` documents each command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    onednn.prepare()  # before any command imports TensorFlow
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
