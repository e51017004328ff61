"""What every `make doctor` check returns: one Finding, printed as one line."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """ok: the check passed. warning: it did not, but what is missing only costs an optional extra (the GPU
    alerts without the DCGM exporter), so it is printed with "!" and does not fail `make doctor`'s exit code."""
    check: str
    ok: bool
    message: str
    fix: str = ""
    warning: bool = False

    @property
    def failed(self) -> bool:
        return not self.ok and not self.warning

    def line(self) -> str:
        mark = "✓" if self.ok else "!" if self.warning else "✗"
        text = f"{mark} {self.check}: {self.message}"
        return text if self.ok or not self.fix else f"{text} -> fix: {self.fix}"
