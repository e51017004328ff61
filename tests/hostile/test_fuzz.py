"""issue 13: a bounded, seeded fuzz run of the served signature with Hypothesis (pinned in requirements.in).

Valid JPEG, PNG, GIF and BMP seeds are mutated (bytes flipped, set to boundary values, inserted, deleted,
header fields overwritten, files cut short or spliced) and sent to the tiny export as TF Serving would. Each
answer must be a well-formed prediction or INVALID_ARGUMENT (never another status, never a crash), within a
deadline, without peak memory above the bound.

    make fuzz                      # FUZZ_SECONDS=300 (5 minutes), FUZZ_SEED=13
    make fuzz FUZZ_SECONDS=60 FUZZ_SEED=7

`make test` runs a short smoke of the same property (FUZZ_EXAMPLES, default 25). A failure prints the
falsifying input (Hypothesis' minimal example): add it to tools/validate/corpus.py as a case, fix, re-run.
"""
from __future__ import annotations

import io
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from tools.validate import corpus
from tools.validate import badinput
from tools.validate import tfs_formats as tfs

FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "13"))
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "0"))  # 0: a smoke run of FUZZ_EXAMPLES
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# One request of one small mutated image: decoding it (at most the pixel limit) plus one run of the model.
DEADLINE_SECONDS = 10.0
# A mutated header may honestly declare up to the tiny export's 40 MP limit: 3 bytes per pixel decoded plus
# the decoders' own buffers; beyond that, something decoded what it should not have.
MEMORY_BOUND_MB = 64 + 40_000_000 * 8 / 2 ** 20

STATS = {"examples": 0, "predictions": 0, "refusals": 0, "max_seconds": 0.0, "max_growth_mb": 0.0, "start": None}


def _seeds() -> list[bytes]:
    px = corpus.photo(48, 64, seed=5)
    img = Image.fromarray(px)
    out = [
        corpus.save(px, "JPEG", quality=90),
        corpus.save(px, "JPEG", quality=90, progressive=True),
        corpus.with_exif(corpus.save(px, "JPEG", quality=90), 6),
        corpus.save(px, "PNG"),
        corpus.raw_png(px.astype(np.uint16) * 257, 2, 16, interlace=True),
        corpus.save(img.quantize(64), "PNG", transparency=0),
        corpus.save(img.quantize(64), "GIF"),
        corpus.save(img.quantize(16), "GIF", save_all=True, append_images=[img.quantize(16).rotate(90)]),
        corpus.save(img.quantize(256), "BMP"),
        corpus.save(img.convert("1"), "BMP"),
        corpus.save(px, "BMP"),
    ]
    rows, _ = corpus.sixteen_bit_rows(px, "565")
    out.append(corpus.raw_bmp(rows, 64, 48, 16, compression=3, masks=struct.pack("<III", 0xF800, 0x07E0, 0x001F)))
    return out


SEEDS = _seeds()
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF]


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, where, value, blob in ops:
        if not b:
            b = bytearray(blob)
            continue
        i = int(where * len(b)) % len(b)
        if op == "flip":
            b[i] ^= 1 << (value % 8)
        elif op == "set":
            b[i] = INTERESTING[value % len(INTERESTING)]
        elif op == "insert":
            b[i:i] = blob
        elif op == "delete":
            del b[i:i + 1 + value % 64]
        elif op == "cut":
            del b[i:]
        elif op == "header_int":
            # Overwrite a 4-byte field in the first 64 bytes (sizes, offsets, counts live there).
            j = int(where * 60)
            b[j:j + 4] = struct.pack("<I", [0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 65535 * 4][value % 6])
        elif op == "splice":
            other = SEEDS[value % len(SEEDS)]
            b[i:] = other[int(where * len(other)):]
    return bytes(b)


OPS = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "cut", "header_int", "splice"]),
                st.floats(0, 1, allow_nan=False, exclude_max=True), st.integers(0, 255), st.binary(max_size=16))


def _fuzz_settings():
    if FUZZ_SECONDS:
        # Time-bounded: far more examples than fit; the body stops doing work when the budget is spent.
        return settings(max_examples=1_000_000, deadline=None, database=None, phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck))
    return settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))


class _BudgetSpent(Exception):
    pass


@pytest.mark.skipif(os.environ.get("FUZZ_SKIP") == "1", reason="FUZZ_SKIP=1")
def test_mutated_images_get_a_prediction_or_invalid_argument(tiny_served, tiny_export):
    k = tiny_export.config.model.top_k
    tiny_served.predict([SEEDS[0]])  # the first call builds the graph's kernels: not a hang
    STATS["start"] = time.monotonic()
    decoder_noise: list[str] = []  # libjpeg's warnings on fd 2 ("Corrupt JPEG data ..."): kept out of the log

    @seed(FUZZ_SEED)
    @_fuzz_settings()
    @given(st.integers(0, len(SEEDS) - 1), st.lists(OPS, min_size=1, max_size=6))
    def one(index, ops):
        if FUZZ_SECONDS and time.monotonic() - STATS["start"] > FUZZ_SECONDS:
            raise _BudgetSpent
        data = _mutate(SEEDS[index], ops)
        start = time.monotonic()
        with badinput.captured_stderr(decoder_noise), badinput.PeakMemory() as peak:
            try:
                outputs = tiny_served.predict([data])
                error = None
            except tfs.ServingError as exc:
                error = exc
        seconds = time.monotonic() - start
        STATS["examples"] += 1
        STATS["max_seconds"] = max(STATS["max_seconds"], seconds)
        STATS["max_growth_mb"] = max(STATS["max_growth_mb"], peak.growth_mb)
        if error is None:
            STATS["predictions"] += 1
            assert badinput._valid_prediction(outputs, 1, k) is None, f"malformed answer for {data[:64]!r}"
        else:
            STATS["refusals"] += 1
            assert error.code == "INVALID_ARGUMENT", f"{error.code}: {error.message[:200]}"
        assert seconds < DEADLINE_SECONDS, f"took {seconds:.1f} s"
        assert peak.growth_mb < MEMORY_BOUND_MB, f"peak memory grew {peak.growth_mb:.0f} MiB"

    try:
        one()
    except _BudgetSpent:
        pass
    elapsed = time.monotonic() - STATS["start"]
    print(f"\nfuzz: seed {FUZZ_SEED}, {STATS['examples']} inputs in {elapsed:.0f} s: {STATS['predictions']} "
          f"predictions, {STATS['refusals']} INVALID_ARGUMENT; slowest {STATS['max_seconds']:.2f} s, largest peak "
          f"memory growth {STATS['max_growth_mb']:.0f} MiB (bound {MEMORY_BOUND_MB:.0f})")
    assert STATS["examples"] > 0
