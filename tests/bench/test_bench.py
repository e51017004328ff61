"""`tools bench`: a quick run of every code path on the tiny export (numbers are never asserted), and the
parts that are plain arithmetic."""
from __future__ import annotations

import json

import pytest

from tools import paths
from tools.bench import machine, run_bench
from tools.bench.measure import time_check
from tools.bench.timing import interleaved, ratios, spread
from tools.errors import UserError


@pytest.mark.slow
def test_quick_bench_on_the_tiny_model(tiny_export, tmp_path):
    from PIL import Image

    out = tmp_path / "bench"
    data = run_bench(tiny_export.config, out, quick=True, sections=("throughput", "large", "coldstart"),
                     progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted([
        paths.BENCH_REPORT_MD, paths.BENCH_REPORT_JSON, paths.BENCH_THROUGHPUT_PNG, paths.BENCH_LARGE_INPUTS_PNG,
        paths.BENCH_COLD_START_PNG])
    assert json.loads((out / paths.BENCH_REPORT_JSON).read_text())["results"].keys() == data["results"].keys()
    for png in (paths.BENCH_THROUGHPUT_PNG, paths.BENCH_LARGE_INPUTS_PNG, paths.BENCH_COLD_START_PNG):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] >= 1000

    r = data["results"]
    batches = r["throughput"]["batches"]
    assert [b["batch_size"] for b in batches] == [1, 2]
    for b in batches:
        assert set(b["seconds"]) == {"bare", "servable", "tutorial", "preprocess", "tutorial_preprocess"}
        assert all(len(v) == data["plan"]["rounds"] for v in b["seconds"].values())
        assert len(b["servable_vs_bare"]["values"]) == data["plan"]["rounds"]
    assert r["flops"]["gflop_per_image"] == pytest.approx(2 * machine.count_gmac(_tiny_model(tiny_export)))
    assert r["large"]["decode_scale"] == "1/8"  # 640x480 against a 40x48 input: 80x60 still covers it
    assert r["large"]["top1_same"] in (True, False)
    cold = r["coldstart"]
    assert [run["warmup"] for run in cold["runs"]] == [False, True]
    assert cold["runs"][1]["warmup_records"] == len(tiny_export.config.warmup_batch_sizes("channels_last")) + 1
    assert cold["export_layouts"] == sorted(paths.LAYOUTS)

    whats = [v["what"] for v in data["verdicts"]]
    assert any("batch 2" in w and "bare" in w for w in whats)  # the largest batch stands in for 32
    assert any("tutorial" in w and "batch 1" in w for w in whats)
    assert any("warmup" in w for w in whats) and any("640x480 JPEGs" in w for w in whats)
    md = (out / paths.BENCH_REPORT_MD).read_text()
    for heading in ("## Targets", "## Servable, bare model", "## Phone-sized photos", "## Cold start",
                    "## Export and check", "## Machine"):
        assert heading in md
    assert "Quick mode" in md
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _tiny_model(tiny_export):
    import keras

    return keras.models.load_model(tiny_export.model_file, compile=False)


def test_count_gmac_of_the_tiny_model(tiny_export):
    # stem conv 20x24 outputs x 3x3x3 x 8, block conv 10x12 x 3x3x8 x 8, dense 8 x 4
    expected = 20 * 24 * 3 * 3 * 3 * 8 + 10 * 12 * 3 * 3 * 8 * 8 + 8 * 4
    assert machine.count_gmac(_tiny_model(tiny_export)) == pytest.approx(expected / 1e9)


def test_bench_refuses_an_unknown_section(tiny_export, tmp_path):
    with pytest.raises(UserError, match="unknown bench section 'speed'"):
        run_bench(tiny_export.config, tmp_path, quick=True, sections=("speed",), progress=False)


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 amx_tile amx_bf16

processor\t: 1
model name\t: ignored
"""


def test_machine_info_and_peak():
    info = machine.machine_info(CPUINFO)
    assert info["cpu_model"].startswith("Intel(R) Xeon(R) Platinum 8480C")
    assert info["ghz"] == 2.0 and info["ghz_source"] == "model name"
    assert info["flags"] == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]
    info["cores"] = 4
    peak, basis = machine.peak_gflops(info)
    assert peak == 4 * 2.0 * 64 and "AVX-512" in basis
    assert machine.flops_per_cycle(["avx2", "fma"])[0] == 32


def test_published_flops_scale_with_input_size():
    gflop, basis = machine.model_gflop_per_image({"architecture": "ResNet50"}, None, (224, 224))
    assert gflop == pytest.approx(8.2) and "published" in basis
    assert machine.model_gflop_per_image({"architecture": "ResNet50"}, None, (448, 448))[0] == pytest.approx(32.8)


def test_interleaved_rotates_the_order():
    order = []
    samples = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b"),
                           "c": lambda: order.append("c")}, rounds=3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(v) == 3 for v in samples.values())


def test_spread_and_ratios():
    s = spread([3.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 10.0, 4)
    assert ratios([2.0, 3.0], [1.0, 4.0]) == [2.0, 0.75]


def test_check_time_when_check_does_not_exist(tmp_path):
    assert time_check(tmp_path, lambda message: None) == {
        "available": False, "note": "not available yet (tools/check does not exist)"}


def test_cli_refuses_unwritable_out(tmp_path, capsys):
    from tools.bench.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--quick", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    assert "is not writable" in capsys.readouterr().err
