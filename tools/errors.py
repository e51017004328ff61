"""The one exception a user sees as a one-line error, and the CLI wrapper that prints it."""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input or environment: printed as one line, exit status 2."""

    exit_code = 2


def run_cli(fn: Callable[[], int | None]) -> int:
    """Run a CLI body; a UserError becomes `error: <message>` on stderr and a non-zero exit."""
    try:
        return int(fn() or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
