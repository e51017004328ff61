"""Bad input against the graph: each malformed request gets its expected answer, a prediction or an
INVALID_ARGUMENT (HTTP 400) whose message names the problem, while the process's peak memory stays bounded.

Peak memory is measured per case: the kernel's high-water mark (VmHWM) is reset through
/proc/self/clear_refs before the call and read after it, minus the resident size before it.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

import numpy as np

from export.preprocess import UNSUPPORTED_MESSAGE
from tools import paths
from tools.validate import samples as S
from tools.validate import tfs_formats as tfs
from tools.validate.correctness import Answers, compare, widened
from tools.validate.report import Report

MIB = 2 ** 20
# A rejected header must not allocate anything like the image it declares.
REJECTED_RSS_MB = 64
# One small image, decoded and run once: far below one full-size decode at the pixel limit (~120 MB).
SINGLE_RSS_MB = 256
HUGE = (65000, 65000)  # 4.2 gigapixels: 12.7 GB of RGB if anything decoded it
BATCH = 64


@dataclass
class Case:
    name: str
    description: str
    images: list[bytes]
    expect: str  # "prediction" or "error"
    message: str | None = None  # what an error message must contain
    rss_bound_mb: float = SINGLE_RSS_MB
    same_as: list[bytes] | None = None  # a prediction must equal this request's
    extra: dict = field(default_factory=dict)
    tolerance: float = 0.0  # of probabilities, for same_as


def corpus_cases(input_size: tuple[int, int] = (40, 48), info: dict | None = None) -> list[Case]:
    """issue 13: the generated hostile/odd image corpus (tools/validate/corpus.py), as bad-input cases, and
    the whole-request cases against the bounds `info` (export_info.json) records, when it records them.

    A prediction must equal the answer to a lossless PNG of the pixels the image really holds; a refusal
    must be INVALID_ARGUMENT naming the reason; every case has its peak-memory bound."""
    from tools.validate import corpus

    found = corpus.cases(tuple(input_size))
    if info and "max_request_pixels" in info and "max_request_bytes" in info:
        found += corpus.request_cases(info["max_image_pixels"], info["max_request_pixels"], info["max_request_bytes"],
                                      tuple(input_size), info.get("jpeg_fast_downscale", True))
    return [Case(f"corpus.{c.name}", c.description, c.images, c.expect, c.message, c.rss_bound_mb,
                 same_as=c.references, tolerance=c.tolerance)
            for c in found]


def _case_images(input_size: tuple[int, int]) -> dict[str, tuple[bytes, ...]]:
    """The images of `cases`, by case name (plus "png", the same_as reference). Made afresh per call: a memo
    saved 0.13 s per layout (measured at stop 19), not worth a cache whose callers could change its contents."""
    h, w = input_size
    base = S.photo(96, 128, seed=21)
    jpeg = S.encode(base, "jpeg")
    png = S.encode(base, "png")
    return {
        "png": (png,),
        "corrupt_jpeg": (S.corrupt_huffman_table(jpeg),),
        "garbage_scan_jpeg": (S.garbage_scan(jpeg),),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2],),
        "random_bytes": (S.random_bytes(4096),),
        "png_alpha": (S.rgba_png(base),),
        "grayscale_jpeg": (S.encode(base, "jpeg", mode="L"),),
        "cmyk_jpeg": (S.encode(base, "jpeg", mode="CMYK"),),
        "one_pixel": (S.encode(S.photo(1, 1, seed=2), "jpeg"),),
        "huge_jpeg_header": (S.declare_jpeg_size(jpeg, *HUGE),),
        "huge_png_header": (S.declare_png_size(png, 100000, 100000),),
        f"batch_{BATCH}": tuple(S.encode(S.photo(h + 7 * (i % 5), w + 5 * (i % 7), seed=100 + i), "jpeg")
                                for i in range(BATCH)),
    }


def cases(input_size: tuple[int, int], batch_rss_mb: float) -> list[Case]:
    made = _case_images(tuple(input_size))

    def images(name: str) -> list[bytes]:
        return list(made[name])

    return [
        Case("corrupt_jpeg", "JPEG with a broken Huffman table", images("corrupt_jpeg"), "error",
             "Invalid JPEG data"),
        Case("garbage_scan_jpeg", "JPEG with valid headers and random entropy-coded data (libjpeg decodes it "
             "with a warning, as in TF Serving)", images("garbage_scan_jpeg"), "prediction"),
        Case("truncated_jpeg", "first half of a JPEG", images("truncated_jpeg"), "error", "Invalid JPEG data"),
        Case("empty_string", "zero bytes", [b""], "error", UNSUPPORTED_MESSAGE),
        Case("random_bytes", "4 KiB of random bytes", images("random_bytes"), "error", UNSUPPORTED_MESSAGE),
        Case("png_alpha", "RGBA PNG (alpha is dropped: same answer as the RGB PNG)", images("png_alpha"), "prediction",
             same_as=images("png")),
        Case("grayscale_jpeg", "one-channel JPEG", images("grayscale_jpeg"), "prediction"),
        Case("cmyk_jpeg", "CMYK JPEG", images("cmyk_jpeg"), "prediction"),
        Case("one_pixel", "1x1 JPEG", images("one_pixel"), "prediction"),
        Case("huge_jpeg_header", f"small JPEG declaring {HUGE[0]}x{HUGE[1]}", images("huge_jpeg_header"),
             "error", "image declares", REJECTED_RSS_MB),
        Case("huge_png_header", "small PNG declaring 100000x100000", images("huge_png_header"),
             "error", "image declares", REJECTED_RSS_MB),
        Case("empty_batch", "a batch of no images", [], "prediction", rss_bound_mb=REJECTED_RSS_MB),
        Case(f"batch_{BATCH}", f"{BATCH} JPEGs around the input size", images(f"batch_{BATCH}"), "prediction",
             rss_bound_mb=batch_rss_mb),
    ]


# ------------------------------------------------------------------------------------------ memory

def _status_kb() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


class PeakMemory:
    """Peak resident memory growth of the process during a block, in MiB (`method` says how it was measured)."""

    def __init__(self):
        self.growth_mb = 0.0
        self.peak_mb = 0.0  # the whole process's peak resident size during the block
        self.method = "unmeasured"

    def __enter__(self):
        self._reset = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current VmRSS
            self._reset = True
        except OSError:
            pass
        try:
            self._before = _status_kb()
        except OSError:
            import resource

            self._before = {"VmRSS": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        return self

    def __exit__(self, *exc):
        try:
            after = _status_kb()["VmHWM"]
            self.method = "VmHWM reset per call" if self._reset else "VmHWM (not resettable here: a lower bound)"
        except OSError:
            import resource

            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.method = "ru_maxrss (a lower bound)"
        base = self._before["VmRSS"] if self._reset else max(self._before.values())
        self.growth_mb = max(0.0, (after - base) / 1024)
        self.peak_mb = after / 1024
        return False


_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+: [A-Z] \S+\] ")


@contextlib.contextmanager
def captured_stderr(sink: list[str]):
    """libjpeg writes its warnings straight to file descriptor 2; keep them out of the report's console
    output and hand them back as figures."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            # TensorFlow's own log prefix (time, level, source line) says nothing about the input.
            sink.extend(_LOG_PREFIX.sub("", line) for line in text.splitlines() if line.strip())


# ------------------------------------------------------------------------------------------ checks

def _valid_prediction(outputs: dict, n: int, k: int) -> str | None:
    p = outputs[paths.OUTPUT_PROBABILITIES]
    if p.shape != (n, k) or outputs[paths.OUTPUT_CLASSES].shape != (n, k) or outputs[paths.OUTPUT_LABELS].shape != (n, k):
        return f"answered shape {p.shape}, expected ({n}, {k})"
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        return "answered probabilities outside [0, 1]"
    return None


def run_case(export, case: Case, k: int) -> tuple[bool, str, dict]:
    messages: list[str] = []
    start = time.monotonic()
    error = outputs = None
    with captured_stderr(messages), PeakMemory() as peak:
        try:
            outputs = export.predict(case.images)
        except tfs.ServingError as exc:
            error = exc
    figures = {"images": len(case.images)}
    n = len(case.images)
    if error is not None:
        figures.update(result=error.code, http_status=error.http_status, message=error.message[:200])
        if case.expect == "error":
            ok = error.code == "INVALID_ARGUMENT" and case.message in error.message
            detail = (f"{case.description}: INVALID_ARGUMENT (HTTP 400) naming the problem" if ok else
                      f"{case.description}: {error.code}, expected INVALID_ARGUMENT containing {case.message!r}")
        else:
            ok, detail = False, f"{case.description}: refused ({error.message[:160]}), expected a prediction"
    else:
        figures.update(result="prediction", rows=int(outputs[paths.OUTPUT_PROBABILITIES].shape[0]))
        problem = _valid_prediction(outputs, n, k)
        ok = case.expect == "prediction" and problem is None
        if case.expect == "error":
            detail = f"{case.description}: answered a prediction, expected INVALID_ARGUMENT containing {case.message!r}"
        elif problem:
            detail = f"{case.description}: {problem}"
        else:
            detail = f"{case.description}: a well-formed prediction of {n} row{'s' if n != 1 else ''}"
            if case.same_as is not None:
                cmp = compare(Answers.of(outputs), Answers.of(export.predict(case.same_as)), case.tolerance)
                figures["same_answer"] = cmp.ok(case.tolerance)
                figures["tolerance"] = case.tolerance
                figures["max_abs_diff"] = float(f"{cmp.max_abs_diff:.3g}")
                if not cmp.ok(case.tolerance):
                    ok, detail = False, f"{case.description}: answer differs (by up to {cmp.max_abs_diff:.3g})"
    figures.update(peak_rss_growth_mb=round(peak.growth_mb, 1), bound_mb=case.rss_bound_mb,
                   process_peak_rss_mb=round(peak.peak_mb),
                   seconds=round(time.monotonic() - start, 2))
    if peak.growth_mb > case.rss_bound_mb:
        ok = False
        detail += f"; peak memory grew {peak.growth_mb:.0f} MiB, above the {case.rss_bound_mb:.0f} MiB bound"
    if messages:
        figures["decoder_said"] = messages[0][:120]
    return ok, detail, figures


def _rest_empty_batch(export) -> dict:
    """REST cannot carry an empty batch in row format; the columnar form can."""
    row_status, row_text = export.rest(json.dumps({"instances": []}))
    col_status, _ = export.rest(json.dumps({"inputs": []}))
    return {"rest_instances_status": row_status, "rest_inputs_status": col_status,
            "rest_instances_error": json.loads(row_text).get("error", "")[:80] if row_status != 200 else ""}


def check_bad_inputs(report: Report, layout: str, export, input_size: tuple[int, int], k: int,
                     batch_rss_mb: float, info: dict | None = None, bf16_tolerance: float | None = None) -> None:
    """Every case, as TF Serving would answer it (a `math: bf16` layout with its target's tolerance: for_bf16)."""
    method = _method_name()
    all_cases = for_bf16(cases(input_size, batch_rss_mb) + corpus_cases(input_size, info), bf16_tolerance)
    for index, case in enumerate(all_cases):
        ok, detail, figures = run_case(export, case, k)
        if case.name == "empty_batch":
            figures.update(_rest_empty_batch(export))
            if figures["rest_instances_status"] != 400 or figures["rest_inputs_status"] != 200:
                ok = False
                detail += "; REST should refuse an empty 'instances' list (400) and accept empty 'inputs' (200)"
        if index == 0:
            figures["memory_measured_by"] = method
        report.add(f"badinput.{case.name}", layout, ok, detail, **figures)


def for_bf16(found: list[Case], bf16_tolerance: float | None) -> list[Case]:
    """The cases as a `math: bf16` layout is checked: one whose answer must equal another request's (an EXIF-turned
    JPEG against a PNG of its upright pixels) allows the target's golden-set tolerance, since the two inputs differ
    by resampling rounding, which bf16's 8-bit mantissa turns into differences of ~1e-2 (ResNet50: up to 0.016)."""
    if not bf16_tolerance:
        return found
    return [replace(c, tolerance=widened(c.tolerance, bf16_tolerance)) if c.same_as is not None else c for c in found]


def _method_name() -> str:
    with PeakMemory() as probe:
        pass
    return probe.method
