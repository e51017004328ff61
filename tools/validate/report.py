"""The validation report: one line per check with its figures, as console lines, JSON and markdown.

The JSON is what `tools bump` reads (it refuses unless "passed" is true and each export's digest matches);
the markdown becomes the body of the version-bump pull request. Both are written next to each other in
build/reports/validate-<name>-v<N>.{json,md}, each through a temporary file and a rename.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tools import paths

PASS, FAIL, NOT_RUN = "✓", "✗", "○"
PASSED, FAILED, NOT_RUN_STATUS = "passed", "failed", "not_run"
SYMBOLS = {PASSED: PASS, FAILED: FAIL, NOT_RUN_STATUS: NOT_RUN}
# 2: every check has a status (passed, failed, not_run); the report lists not-run checks and whether they were
# accepted (--accept-not-run). A check that could not execute is never shown as passed.
FORMAT = 2
ACCEPT_FLAG = "--accept-not-run"


@dataclass
class Check:
    name: str  # dotted: structure.digest, serving.request_formats, badinput.truncated_jpeg, ...
    layout: str | None  # None for checks about the version as a whole (layouts agree)
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # passed, failed or not_run; derived from `passed` when not given

    def __post_init__(self):
        if not self.status:
            self.status = PASSED if self.passed else FAILED
        self.passed = self.status == PASSED

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]

    def to_dict(self) -> dict:
        return {"name": self.name, "layout": self.layout, "status": self.status, "passed": self.passed,
                "detail": self.detail, "figures": self.figures}

    def line(self) -> str:
        where = self.layout or "both layouts"
        figures = figures_text(self.figures)
        detail = f"not run: {self.detail}" if self.status == NOT_RUN_STATUS else self.detail
        return f"{self.symbol} {where:<14} {self.name:<28} {detail}" + (f"  [{figures}]" if figures else "")


@dataclass
class ExportResult:
    path: str
    digest: str | None
    passed: bool = True


@dataclass
class Report:
    model: str
    version: int | None
    tensorflow_version: str = ""
    keras_version: str = ""
    exports: dict[str, ExportResult] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    tolerances: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # Set by `--accept-not-run`: the user accepts that the not-run checks did not run on this machine.
    accept_not_run: bool = False
    # The golden set: images and each layout's answers (tools/goldenset/record.py; overlays are rendered from it).
    golden_set: dict[str, Any] = field(default_factory=dict)
    # Called with each check as it is added, so a long run shows progress line by line.
    echo: Callable[[Check], None] | None = field(default=None, repr=False, compare=False)

    def add(self, name: str, layout: str | None, passed: bool, detail: str, **figures) -> Check:
        return self._add(Check(name, layout, bool(passed), detail, {k: _plain(v) for k, v in figures.items()}))

    def not_run(self, name: str, layout: str | None, reason: str, **figures) -> Check:
        """A check that could not execute here: its own status, never a pass. `reason` says why."""
        return self._add(Check(name, layout, False, reason, {k: _plain(v) for k, v in figures.items()},
                               status=NOT_RUN_STATUS))

    def _add(self, check: Check) -> Check:
        self.checks.append(check)
        if check.layout in self.exports and check.status == FAILED:
            self.exports[check.layout].passed = False
        if self.echo:
            self.echo(check)
        return check

    @property
    def passed(self) -> bool:
        return (bool(self.checks) and bool(self.exports) and not self.failures()
                and (self.accept_not_run or not self.not_run_checks()))

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]

    def not_run_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status == NOT_RUN_STATUS]

    def counts(self) -> str:
        """"62 checks: 60 passed, 1 failed, 1 not run" (zero counts left out, passed always shown)."""
        passed = sum(c.status == PASSED for c in self.checks)
        parts = [f"{passed} passed"]
        if self.failures():
            parts.append(f"{len(self.failures())} failed")
        if self.not_run_checks():
            parts.append(f"{len(self.not_run_checks())} not run" + (" (accepted)" if self.accept_not_run else ""))
        return f"{len(self.checks)} checks: " + ", ".join(parts)

    def verdict(self) -> str:
        if self.passed:
            return "PASSED" + (f" with {len(self.not_run_checks())} not-run checks accepted ({ACCEPT_FLAG})"
                               if self.not_run_checks() else "")
        if self.failures():
            return "FAILED"
        return f"NOT PASSED: checks did not run (re-run where they can, or accept with {ACCEPT_FLAG})"

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model,
            "version": self.version,
            "passed": self.passed,
            "not_run": [_check_id(c) for c in self.not_run_checks()],
            "accepted_not_run": self.accept_not_run,
            "tensorflow_version": self.tensorflow_version,
            "keras_version": self.keras_version,
            "exports": {lay: {"path": e.path, "digest": e.digest, "passed": e.passed} for lay, e in self.exports.items()},
            "checks": [c.to_dict() for c in self.checks],
            "tolerances": self.tolerances,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "golden_set": self.golden_set,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def summary_line(self) -> str:
        return (f"{PASS if self.passed else FAIL} {self.model} v{self.version}: {self.verdict()} "
                f"({self.counts()}) in {self.seconds:.1f} s")

    def to_markdown(self) -> str:
        verdict = f"{PASS if self.passed else FAIL} {self.verdict().lower()} ({self.counts()})"
        loader = self.machine.get("loader")
        onednn = (self.machine.get("onednn") or {})
        lines = [
            f"## Validation of `{self.model}` version {self.version}: {verdict}",
            "",
            f"Validated with TensorFlow {self.tensorflow_version} (Keras {self.keras_version}), "
            + (f"loaded through {loader}, " if loader else "")
            + (f"oneDNN {'on' if onednn.get('enabled') else 'off'} ({onednn.get('variable')}), " if onednn else "")
            + f"in {self.seconds:.1f} s. Re-run with `make validate`.",
            "",
            "| Layout | Export | Digest | Result |",
            "|---|---|---|---|",
        ]
        for lay, e in self.exports.items():
            lines.append(f"| {lay} | `{_md(e.path)}` | `{e.digest or '-'}` | {PASS if e.passed else FAIL} |")
        lines += ["", "| | Layout | Check | Detail | Figures |", "|---|---|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c.symbol} | {c.layout or 'both'} | `{c.name}` | {_md(('not run: ' if c.status == NOT_RUN_STATUS else '') + c.detail)} | "
                         f"{_md(figures_text(c.figures, limit=None))} |")
        if self.tolerances:
            lines += ["", "Tolerances:", ""]
            lines += [f"- `{k}`: {_md(str(v))}" for k, v in self.tolerances.items()]
        if self.golden_set:
            from tools.goldenset.record import markdown

            lines += markdown(self.golden_set)
        if self.machine:
            lines += ["", "Machine: " + _md(", ".join(f"{k} {v}" for k, v in self.machine.items()))]
        return "\n".join(lines) + "\n"

    def write(self, reports_dir: Path) -> tuple[Path, Path]:
        """Write the JSON and markdown reports (temporary file, then rename: never half-written)."""
        if self.version is None:
            raise ValueError("a report without a version cannot be written")
        reports_dir = Path(reports_dir)
        reports_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, text in (("json", self.to_json()), ("md", self.to_markdown())):
            target = paths.validation_report(reports_dir, self.model, self.version, suffix)
            fd, tmp = tempfile.mkstemp(prefix=paths.TMP_PREFIX, dir=reports_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(target)
        return written[0], written[1]


def _check_id(check: Check) -> str:
    return check.name + (f" ({check.layout})" if check.layout else "")


def figures_text(figures: dict[str, Any], limit: int | None = 160) -> str:
    """k=v pairs; lists longer than `limit` characters are cut (the console), None keeps them whole (markdown)."""
    return ", ".join(f"{k}={_short(v, limit)}" for k, v in figures.items())


def _short(value: Any, limit: int | None = 160) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_short(v, limit) for v in value) + "]"
        return text if limit is None or len(text) <= limit else text[:limit - 3] + "...]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v, limit)}" for k, v in value.items()) + "}"
    return str(value)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> Any:
    """Figures as JSON-ready values (numpy scalars and arrays, tuples, paths become plain types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
