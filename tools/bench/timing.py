"""Interleaved timing and the statistics a comparison is reported with.

A shared 2-core machine drifts: other processes come and go, clocks change. Timing A for a minute and then B
for a minute puts that drift into the comparison. Here every round runs each variant once (in a rotating
order), and each round gives one ratio, so the median ratio and its spread compare A and B under the same
conditions.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(variants: dict[str, Callable[[], object]], rounds: int, repeats: int = 1,
                on_round: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each variant: `rounds` samples each, a sample being the mean of `repeats` calls."""
    names = list(variants)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = variants[name]
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            samples[name].append((time.perf_counter() - start) / repeats)
        if on_round:
            on_round(r)
    return samples


def repeats_for(fn: Callable[[], object], sample_seconds: float) -> int:
    """How many calls make one sample of about `sample_seconds` (one untimed call measures it)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(50, round(sample_seconds / max(once, 1e-6))))


def spread(values: list[float]) -> dict:
    """median, min, max, quartiles and count."""
    values = sorted(values)
    n = len(values)
    q = statistics.quantiles(values, n=4, method="inclusive") if n > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "q1": q[0], "q3": q[2], "n": n}


def ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Per-round ratios a_i / b_i (rounds pair up by index)."""
    return [a / b for a, b in zip(numerators, denominators)]


def tf_peak_bytes(fn: Callable[[], object]) -> int | None:
    """Peak bytes held by TensorFlow's CPU allocator while fn runs, above what it held before (None if the
    allocator keeps no statistics). Process RSS cannot show this: the allocator keeps freed memory for reuse."""
    import tensorflow as tf

    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    except (ValueError, RuntimeError):
        fn()
        return None
    fn()
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
