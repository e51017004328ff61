"""Progress lines on stderr for long commands: `[<what> <seconds since start>s] <message>`."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, what: str, enabled: bool = True):
        self.what, self.enabled, self.start = what, enabled, time.monotonic()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{self.what} {time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)
