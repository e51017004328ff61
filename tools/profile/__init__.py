"""Measure a served model: latency percentiles and throughput over a sweep of batch sizes and concurrency.

    python -m tools profile --url http://localhost:8501 --batch-sizes 1,8,32 --concurrency 1,4
    python -m tools profile --grpc --port 8500 photos/ --requests 50 --max-seconds 20

The successor of the original tutorial's resnet_profiler.py, which timed N sequential requests of one batch
and printed mean/median/min/max. For every (batch size, concurrency) point this sends up to --requests
requests from `concurrency` threads, stopping early at --max-seconds, after --warmup untimed requests. Each
request carries `batch size` images cycled from the inputs; payloads are encoded before timing starts, so the
numbers are the server's round trip, not the client's JSON or protobuf encoding.

Writes <out>/profile.csv (one row per point) and <out>/profile.png (latency and throughput against batch
size, one line per concurrency), and prints the table. Library: `run_sweep`, `write_csv`, plot.plot_profile.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tools.client.transport import Transport
from tools.errors import UserError

CSV_FIELDS = ("protocol", "batch_size", "concurrency", "requests", "images", "seconds", "latency_ms_p50",
              "latency_ms_p90", "latency_ms_p99", "latency_ms_mean", "latency_ms_min", "latency_ms_max",
              "images_per_s", "requests_per_s")


@dataclass
class Point:
    protocol: str
    batch_size: int
    concurrency: int
    requests: int
    images: int
    seconds: float  # wall time of the timed requests
    latency_ms_p50: float
    latency_ms_p90: float
    latency_ms_p99: float
    latency_ms_mean: float
    latency_ms_min: float
    latency_ms_max: float
    images_per_s: float
    requests_per_s: float


def summarize(protocol: str, batch_size: int, concurrency: int, latencies_s: list[float], seconds: float) -> Point:
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    n = len(ms)
    return Point(protocol, batch_size, concurrency, n, n * batch_size, seconds, float(p50), float(p90), float(p99),
                 float(ms.mean()), float(ms.min()), float(ms.max()), n * batch_size / seconds, n / seconds)


def parse_sizes(text: str, option: str) -> list[int]:
    """"1,8,32" -> [1, 8, 32]: positive, unique, in the given order."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{option} must be comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise UserError(f"{option} must be comma-separated positive integers, got {text!r}")
    if len(set(sizes)) != len(sizes):
        raise UserError(f"{option} lists a value twice: {text!r}")
    return sizes


def _batch(images: list[bytes], size: int, offset: int) -> list[bytes]:
    return [images[(offset + i) % len(images)] for i in range(size)]


def _run_point(transport: Transport, payload, batch_size: int, concurrency: int, requests: int,
               max_seconds: float, on_done) -> tuple[list[float], float]:
    """Send up to `requests` requests from `concurrency` threads until done or out of time."""
    latencies: list[float] = []
    lock = threading.Lock()
    issued = [0]
    failure: list[BaseException] = []
    start = time.perf_counter()
    deadline = start + max_seconds

    def worker():
        while True:
            with lock:
                if failure or issued[0] >= requests or time.perf_counter() >= deadline:
                    return
                issued[0] += 1
            began = time.perf_counter()
            try:
                transport.send(payload, batch_size)
            except BaseException as exc:  # the first failure stops every worker and is re-raised below
                with lock:
                    failure.append(exc)
                return
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
            on_done()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="profile") as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    seconds = time.perf_counter() - start
    if failure:
        raise failure[0]
    return latencies, seconds


def run_sweep(transport: Transport, images: list[bytes], batch_sizes: list[int], concurrencies: list[int],
              requests: int = 20, max_seconds: float = 10.0, warmup: int = 1, progress: bool = True) -> list[Point]:
    """Every (batch size, concurrency) point, batch sizes outermost; raises UserError on the first failed request."""
    from tqdm import tqdm

    if not images:
        raise UserError("no images to send: give image files or directories, or --samples N")
    if requests < 1 or max_seconds <= 0 or warmup < 0:
        raise UserError("--requests must be at least 1, --max-seconds more than 0 and --warmup at least 0")
    protocol = "grpc" if transport.endpoint.grpc else "rest"
    points: list[Point] = []
    total = len(batch_sizes) * len(concurrencies) * requests
    with tqdm(total=total, unit="req", desc="profile", disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for b in batch_sizes:
            payload = transport.encode(_batch(images, b, 0))
            for _ in range(warmup):
                transport.send(payload, b)
            for c in concurrencies:
                bar.set_description(f"batch {b:>3} x{c} threads")
                latencies, seconds = _run_point(transport, payload, b, c, requests, max_seconds, lambda: bar.update(1))
                # A point cut short by --max-seconds still moves the bar to its end.
                bar.update(requests - len(latencies))
                points.append(summarize(protocol, b, c, latencies, seconds))
    return points


def csv_text(points: list[Point]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for p in points:
        row = asdict(p)
        writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_table(points: list[Point]) -> str:
    head = (f"{'batch':>5} {'threads':>7} {'requests':>8} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} "
            f"{'images/s':>9} {'req/s':>7}")
    lines = [head, "-" * len(head)]
    for p in points:
        lines.append(f"{p.batch_size:>5} {p.concurrency:>7} {p.requests:>8} {p.latency_ms_p50:>9.1f} "
                     f"{p.latency_ms_p90:>9.1f} {p.latency_ms_p99:>9.1f} {p.images_per_s:>9.1f} "
                     f"{p.requests_per_s:>7.1f}")
    return "\n".join(lines)


def profile_to_files(endpoint, sources: list[str], *, samples: int = 8, batch_sizes: list[int],
                     concurrencies: list[int], requests: int = 20, max_seconds: float = 10.0, warmup: int = 1,
                     out_dir: Path | None = None, progress: bool = True) -> str:
    """Run the sweep against `endpoint` and write the CSV and the plot; returns the table and where they are."""
    from datetime import datetime, timezone

    from tools import paths
    from tools.client import images as image_inputs
    from tools.client.transport import make_transport
    from tools.profile.plot import plot_profile

    inputs = image_inputs.collect(sources) if sources else image_inputs.samples(samples)
    out_dir = Path(out_dir or paths.REPO_ROOT / paths.PROFILE_DIR)
    transport = make_transport(endpoint)
    try:
        points = run_sweep(transport, [i.data for i in inputs], batch_sizes, concurrencies, requests=requests,
                           max_seconds=max_seconds, warmup=warmup, progress=progress)
    finally:
        transport.close()
    csv_path, png_path = out_dir / paths.PROFILE_CSV, out_dir / paths.PROFILE_PNG
    write_atomically(csv_path, csv_text(points).encode())
    protocol = "gRPC" if endpoint.grpc else "REST"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    plot_profile(points, png_path, title=f"{endpoint.servable} via {protocol}",
                 subtitle=f"{endpoint.where} · {len(inputs)} distinct images · up to {requests} requests or "
                          f"{max_seconds:g} s per point · {when}")
    return f"{format_table(points)}\n\nwrote {csv_path} and {png_path}"
