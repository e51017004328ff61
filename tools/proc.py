"""The one way this repository runs a subprocess: echo the command, capture, raise with its output."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from tools.errors import UserError


class CommandError(UserError):
    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.argv, self.returncode, self.stdout, self.stderr = list(argv), returncode, stdout, stderr
        super().__init__(f"`{shlex.join(argv)}` failed with exit status {returncode}: {cause(stdout, stderr)}")


# Lines git and gh start the real cause with; the last line alone is often a hint or a retry notice
# ("hint: ...", "error: failed to push some refs") while the "fatal: ..." above it says why (issue 13).
_CAUSE_PREFIXES = ("fatal:", "error:", "remote: error:", "! [rejected]", "! [remote rejected]")


def cause(stdout: str, stderr: str) -> str:
    """One line for a failed command: its fatal:/error: lines (in order, joined), else its last line."""
    detail = (stderr or stdout).strip()
    if not detail:
        return "no output"
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    picked = [line for line in lines if line.startswith(_CAUSE_PREFIXES)]
    return "; ".join(dict.fromkeys(picked)) if picked else lines[-1]


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


# Tests append a callable here to record every command that runs.
RECORDERS: list[Callable[[list[str]], None]] = []


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    echo: bool = True,
    input: str | None = None,
    timeout: float | None = None,
) -> Result:
    """Run argv (never through a shell), echoing it to stderr; raise CommandError on failure if check."""
    argv = [str(a) for a in argv]
    for record in RECORDERS:
        record(argv)
    if echo:
        print(f"+ {shlex.join(argv)}", file=sys.stderr)
    merged_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=merged_env, input=input, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise UserError(f"`{argv[0]}` is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"`{shlex.join(argv)}` did not finish within {timeout} s") from None
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return result
