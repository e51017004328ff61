"""What makes one validation cheaper without changing what it checks: the corpus made once per process (and never
changed by a caller), the faster GIF re-chunking giving the same bytes, and Python's object loader loaded only
when the loaders-agree check needs it. The bad-input images are made per call and must be the same every time."""
from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image

from tools.validate import badinput, corpus

BOUNDS = (4_000_000, 16_000_000, 8 << 20)  # max_image_pixels, max_request_pixels, max_request_bytes


def _snapshot(cases) -> list:
    return [(c.name, c.description, c.expect, c.message, c.rss_bound_mb, c.tolerance, tuple(c.images),
             None if c.same_as is None else tuple(c.same_as)) for c in cases]


def test_the_bad_input_cases_are_equal_on_every_call_and_a_caller_cannot_change_the_next_ones():
    """Made afresh per call (no memo): the same bytes every time, whatever a caller did to the last ones."""
    first = badinput.cases((40, 48), 512.0)
    expected = _snapshot(first)
    for case in first:  # everything a caller could do to what it was given
        case.images.append(b"changed")
        if case.same_as is not None:
            case.same_as.clear()
        case.extra["changed"] = True
    again = badinput.cases((40, 48), 512.0)
    assert _snapshot(again) == expected
    assert all(c.extra == {} for c in again)
    assert badinput.cases([40, 48], 512.0)[0].images == again[0].images  # a list size is the same size


def test_the_batch_rss_bound_follows_the_argument():
    assert badinput.cases((40, 48), 100.0)[-1].rss_bound_mb == 100.0
    assert badinput.cases((40, 48), 300.0)[-1].rss_bound_mb == 300.0


def test_the_batch_images_follow_the_input_size():
    small, large = badinput.cases((40, 48), 512.0)[-1], badinput.cases((64, 80), 512.0)[-1]
    assert len(small.images) == len(large.images) == badinput.BATCH
    assert Image.open(io.BytesIO(small.images[0])).size == (48, 40)
    assert Image.open(io.BytesIO(large.images[0])).size == (80, 64)


def test_the_corpus_is_made_once_per_arguments_and_cannot_be_changed():
    assert corpus.cases((40, 48)) is corpus.cases((40, 48))
    assert corpus.request_cases(*BOUNDS, (40, 48), True) is corpus.request_cases(*BOUNDS, (40, 48), True)
    case = corpus.cases((40, 48))[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.data = b"changed"
    assert isinstance(corpus.cases((40, 48)), tuple) and isinstance(case.data, bytes)
    # Each call of corpus_cases builds new Case objects with new lists from the shared frozen cases.
    a, b = badinput.corpus_cases((40, 48)), badinput.corpus_cases((40, 48))
    a[0].images.append(b"changed")
    assert b[0].images == corpus.cases((40, 48))[0].images == badinput.corpus_cases((40, 48))[0].images


def test_request_cases_differ_with_their_bounds():
    loose = {c.name: c for c in corpus.request_cases(*BOUNDS, (40, 48), True)}
    tight = {c.name: c for c in corpus.request_cases(BOUNDS[0], BOUNDS[1] // 2, BOUNDS[2], (40, 48), True)}
    photo = 2000 * 1500  # the largest 4:3 photo the 4 MP image bound lets through
    assert loose["request_over_pixel_bound"].count == BOUNDS[1] // photo + 1
    assert tight["request_over_pixel_bound"].count == BOUNDS[1] // 2 // photo + 1


def _rechunk_byte_by_byte(data: bytes, size: int) -> bytes:
    """The former implementation: one generator step per sub-block."""
    head, payloads, tail = corpus.gif_blocks(data)
    lzw = b"".join(payloads)
    blocks = b"".join(bytes([len(lzw[i:i + size])]) + lzw[i:i + size] for i in range(0, len(lzw), size))
    return head + blocks + b"\x00" + tail


@pytest.mark.parametrize("size", [1, 2, 7, 254, 255])
def test_rechunked_gif_is_the_same_bytes_as_block_by_block(size):
    data = corpus.save(Image.fromarray(corpus.photo(60, 80)).quantize(100), "GIF")
    out = corpus.rechunk_gif(data, size)
    assert out == _rechunk_byte_by_byte(data, size)
    _, payloads, _ = corpus.gif_blocks(out)
    assert {len(p) for p in payloads[:-1]} == {size} and 1 <= len(payloads[-1]) <= size
    assert b"".join(payloads) == b"".join(corpus.gif_blocks(data)[1])


@pytest.mark.parametrize("size", [0, 256])
def test_a_sub_block_size_gifs_cannot_hold_is_refused(size):
    data = corpus.save(Image.fromarray(corpus.photo(8, 8)).quantize(8), "GIF")
    with pytest.raises(ValueError, match="1 to 255 bytes"):
        corpus.rechunk_gif(data, size)


# ------------------------------------------------------------------------------- Python's loader, on demand

@pytest.fixture
def counted_loads(monkeypatch):
    """Counts tf.saved_model.load calls made by tools/validate/serving.py."""
    from tools.validate import serving

    calls = []
    real = serving.tf.saved_model.load

    def load(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(serving.tf.saved_model, "load", load)
    return calls


def _capi_or_skip():
    from tools.validate import capi

    try:
        capi.library()
    except capi.CApiUnavailable as exc:
        pytest.skip(f"TF Serving's load path cannot run here: {exc}")


@pytest.mark.slow(seconds=12)
def test_tf_servings_path_alone_never_loads_pythons_loader(tiny_export, counted_loads):
    from tests.validate.helpers import LAST
    from tools import paths
    from tools.validate import serving, tfs_formats as tfs
    from tools.validate.samples import correctness_samples

    _capi_or_skip()
    export = serving.LoadedExport(tiny_export.dirs[LAST], LAST, tiny_export.name, 1)
    try:
        images = [s.data for s in correctness_samples((40, 48))[:2]]
        served = export.predict(images)
        assert counted_loads == []
        inputs = {paths.INPUT_KEY: tfs.as_input_array(images)}
        python = export.run_python(paths.SERVING_SIGNATURE, inputs)
        assert export.loaded is not None and export.run_python(paths.SERVING_SIGNATURE, inputs)
        assert len(counted_loads) == 1  # loaded on first use, then reused
        assert export.python_error is None and export.python_load_seconds > 0
        assert (python[paths.OUTPUT_CLASSES] == served[paths.OUTPUT_CLASSES]).all()
    finally:
        export.close()


@pytest.mark.slow(seconds=5)
def test_without_the_c_api_pythons_loader_loads_at_once_and_its_failure_is_the_loads(tiny_export, tmp_path,
                                                                                     counted_loads, monkeypatch):
    from tests.validate.helpers import LAST
    from tools.validate import serving

    export = serving.LoadedExport(tiny_export.dirs[LAST], LAST, tiny_export.name, 1, use_capi=False)
    assert len(counted_loads) == 1 and export.loaded is not None and export.load_seconds > 0
    assert len(counted_loads) == 1

    def refuse(*args, **kwargs):
        raise ValueError("cannot rebuild this object graph")

    monkeypatch.setattr(serving.tf.saved_model, "load", refuse)
    with pytest.raises(ValueError, match="cannot rebuild"):
        serving.LoadedExport(tiny_export.dirs[LAST], LAST, tiny_export.name, 1, use_capi=False)


def test_a_python_load_failure_beside_the_c_api_still_fails_loaders_agree(tiny_export, monkeypatch):
    from tests.validate.helpers import LAST
    from tools.validate import serving
    from tools.validate.report import Report
    from tools.validate.samples import correctness_samples

    _capi_or_skip()

    def refuse(*args, **kwargs):
        raise ValueError("cannot rebuild this object graph")

    monkeypatch.setattr(serving.tf.saved_model, "load", refuse)
    export = serving.LoadedExport(tiny_export.dirs[LAST], LAST, tiny_export.name, 1)  # loads: TF Serving's path
    try:
        report = Report(model=tiny_export.name, version=1)
        serving.check_loaders_agree(report, LAST, export, [correctness_samples((40, 48))[0].data])
        (check,) = [c for c in report.checks if c.name == "serving.loaders_agree"]
        assert not check.passed and "cannot rebuild this object graph" in check.detail
    finally:
        export.close()
