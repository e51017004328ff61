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
    # rounds=3: --rounds reaches the throughput and phone-photo sections (quick mode's own is 2)
    data = run_bench(tiny_export.config, out, quick=True, sections=("throughput", "large", "coldstart"),
                     progress=False, rounds=3)
    assert data["plan"]["rounds"] == 3 and data["plan"]["large_rounds"] == 3
    assert all(len(v) == 3 for v in data["results"]["large"]["seconds"].values())
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
        assert set(b["seconds"]) == {"bare", "bare_as_trained", "servable", "tutorial", "preprocess",
                                     "tutorial_preprocess"}
        assert all(len(v) == data["plan"]["rounds"] for v in b["seconds"].values())
        assert len(b["servable_vs_bare"]["values"]) == data["plan"]["rounds"]
        assert len(b["folded_vs_as_trained"]["values"]) == data["plan"]["rounds"]
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
    assert "| Folded / as trained |" in md
    assert list(data["section_seconds"]) == ["build", "throughput", "large", "coldstart"]
    assert "Where the time went: build " in md and "coldstart " in md
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _tiny_model(tiny_export):
    import keras

    return keras.models.load_model(tiny_export.model_file, compile=False)


def test_count_gmac_of_the_tiny_model(tiny_export):
    # stem conv 20x24 outputs x 3x3x3 x 8, block conv 10x12 x 3x3x8 x 8, dense 8 x 4
    expected = 20 * 24 * 3 * 3 * 3 * 8 + 10 * 12 * 3 * 3 * 8 * 8 + 8 * 4
    assert machine.count_gmac(_tiny_model(tiny_export)) == pytest.approx(expected / 1e9)


def test_too_few_rounds_are_refused(tmp_path, capsys):
    from tools.bench.cli import main

    assert main(["--quick", "--rounds", "1", "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rounds must be at least 2" in err[0]
    assert main(["--quick", "--onednn-rounds", "0", "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--onednn-rounds must be at least 1, got 0" in err[0]
    assert not (tmp_path / "c").exists()


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


# ------------------------------------------------------------------ issue 16: oneDNN on/off and bf16, separate processes

def _fake_worker(calls, calls_shift=(1e-3,)):
    """Stands in for tools.bench.onednn_worker: what a process under each setting would print."""
    def run(argv, env, repo_root):
        calls.append((argv, env))
        if argv == ["--probe"]:
            return {"onednn_enabled": True, "math": "fp32", "env": env}
        import pickle
        from pathlib import Path

        if argv[0] == "--kernels":  # what onednn_kernels.parse makes of such a process's verbose lines
            on, bf16 = env["TF_ENABLE_ONEDNN_OPTS"] == "1", env["TFSG_MIXED_PRECISION"] == "bfloat16"
            convs = [{"kind": "convolution", "impl": "brg_conv_fwd:avx512_core" + ("_bf16" if bf16 else ""),
                      "dtype": "bf16" if bf16 else "f32", "count": 3}] if on else []
            return {"onednn_enabled": on, "kernels": {"isa": "Intel AVX-512", "version": "v3.7.3",
                                                      "primitives": convs, "sgemm_calls": 0 if on else 40}}

        job = pickle.loads(Path(argv[0]).read_bytes())
        on = env["TF_ENABLE_ONEDNN_OPTS"] == "1"
        bf16 = env["TFSG_MIXED_PRECISION"] == "bfloat16"
        frozen = env["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] == "1"
        speed = 2.0 if bf16 else 1.8 if frozen else 1.5 if on else 1.0
        shift = calls_shift[0] if bf16 else 1e-6 if on else 0.0
        golden = [[[3, 1], [0.6 + shift, 0.3]], [[2, 0], [0.5, 0.4 - shift]]]
        return {"onednn_enabled": on, "math": "bf16" if bf16 else "fp32", "build_s": 1.0, "golden": golden,
                "seconds": {str(b): {"servable": b / (10 * speed), "bare": b / (11 * speed),
                                     "bare_other_fold": b / (12.1 * speed)}  # the other fold 1.1x faster
                            for b in job["batch_sizes"]}}
    return run


def test_onednn_section_interleaves_settings_and_reports_them(tiny_export, tmp_path, monkeypatch):
    from PIL import Image

    from tools.bench import onednn_compare

    calls = []
    monkeypatch.setattr(onednn_compare, "_run", _fake_worker(calls))
    out, docs = tmp_path / "bench", tmp_path / "docs"
    data = run_bench(tiny_export.config, out, quick=True, sections=("onednn",), progress=False, docs_dir=docs,
                     onednn_rounds=2)
    od = data["results"]["onednn"]
    names, _ = onednn_compare.settings_for(machine.all_flags())
    assert od["settings"] == names and od["problems"] == [] and od["rounds"] == 2
    # one process per setting per round, the order rotated each round
    rotated = names[1:] + names[:1]
    timed = [c for c in calls if c[0][0] not in ("--kernels", "--probe")]
    assert [c[1] for c in timed] == [onednn_compare.SETTINGS[n] for n in names + rotated]
    # then one untimed process per setting under ONEDNN_VERBOSE: the kernels it ran
    census = [c for c in calls if c[0][0] == "--kernels"]
    assert [c[1] for c in census] == [{**onednn_compare.SETTINGS[n], "ONEDNN_VERBOSE": "profile_exec"} for n in names]
    assert calls.index(census[0]) > calls.index(timed[-1])
    assert calls[-1] == (["--probe"], {"TF_ENABLE_ONEDNN_OPTS": None, "TF_SET_ONEDNN_FPMATH_MODE": None,
                                       "TFSG_MIXED_PRECISION": None, "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None})
    for b in od["batches"]:
        assert set(b["images_per_s"]) == {f"{n}:{w}" for n in names for w in ("servable", "bare")}
        assert b["ratios"]["on/off:servable"]["median"] == pytest.approx(1.5)
    assert od["golden_differences"]["off vs on"]["max_abs_prob_diff"] == pytest.approx(1e-6)
    assert od["configured"] == {"cpu": "onednn: on, math: fp32"}
    # frozen weights: measured on every CPU; the fastest in this fake within the tolerance, so recommended
    assert "frozen" in names and od["within_tolerance"]["frozen"] is True
    assert all(b["ratios"]["frozen/on:servable"]["median"] == pytest.approx(1.2) for b in od["batches"])
    assert od["recommended"]["setting"] == "frozen"
    assert od["recommended"]["model_yaml"] == "onednn: on, frozen_weights: true"
    if "bf16" in names:  # 1e-3 from fp32 is beyond the CPU target's 1e-4: fastest, but not recommended
        assert od["within_tolerance"]["bf16"] is False and od["recommended"]["setting"] != "bf16"
    assert any("oneDNN on / off" in v["what"] and v["met"] for v in data["verdicts"])
    with Image.open(out / paths.BENCH_ONEDNN_PNG) as im:
        assert im.format == "PNG"
    md = (out / paths.BENCH_REPORT_MD).read_text()
    assert "## oneDNN and bf16 math" in md and "TensorFlow by itself" in md
    assert od["kernels"]["on"]["primitives"][0]["impl"] == "brg_conv_fwd:avx512_core"
    assert "| oneDNN on (fp32) | avx512_core in f32 (3 of 3) | convolution: brg_conv_fwd:avx512_core f32 x3 | " \
           "Intel AVX-512 (oneDNN v3.7.3) |" in md
    assert "- Frozen weights (`frozen_weights: true`, `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1`: oneDNN keeps each " \
           "reordered filter) / oneDNN on, servable throughput: 1.200" in md
    assert "in model.yaml `onednn: on, frozen_weights: true`); model.yaml now: cpu: onednn: on, math: fp32" in md
    assert "| oneDNN off (fp32) | TensorFlow's own kernels, no oneDNN primitive (their matrix products: 40 calls " \
           "of oneDNN's sgemm) | none |" in md
    assert "## Export and check" not in md  # neither section ran: no empty heading
    # the other fold in the same processes: the export folds the shifts apart (model.yaml), so complete is timed
    assert od["fold"] == {"export": "shift apart", "other": "complete"}
    assert all(b["other_fold"][n]["median"] == pytest.approx(1.1) for b in od["batches"] for n in names)
    assert "Bare model folded **complete** / as exported (**shift apart**" in md
    assert "`model.fold_batch_norms: complete` would serve it faster" in md
    assert not docs.exists()  # quick numbers never reach the docs


def test_bf16_that_changes_no_bit_is_never_recommended(tiny_export, tmp_path, monkeypatch):
    from tools.bench import onednn_compare

    zen5 = {"avx2", "fma", "avx512f", "avx512_bf16"}  # a CPU with bf16 dot products; this run's answers did not move
    names, _ = onednn_compare.settings_for(zen5)
    monkeypatch.setattr(onednn_compare, "_run", _fake_worker([], calls_shift=(1e-6,)))  # bf16 == on, bit for bit
    from tools.bench.measure import QUICK

    od = onednn_compare.compare(tiny_export.config, QUICK, lambda _: None, paths.REPO_ROOT, zen5)
    assert od["settings"] == names and od["bf16_in_effect"] is False
    assert od["recommended"]["setting"] != "bf16"  # bf16 was fastest in the fake, but it was oneDNN on all along


@pytest.mark.slow
def test_a_worker_process_runs_under_the_setting_it_is_given(tiny_export, tmp_path):
    import pickle

    from tools.bench import onednn_compare

    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps({"config": tiny_export.config, "batch_sizes": [1], "samples": 1,
                                  "sample_seconds": 0.001}))
    off = onednn_compare._run([str(job)], onednn_compare.SETTINGS["off"], paths.REPO_ROOT)
    assert off["onednn_enabled"] is False and off["math"] == "fp32"
    assert off["env"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_SET_ONEDNN_FPMATH_MODE": None, "TFSG_MIXED_PRECISION": None,
                          "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None}
    assert set(off["seconds"]["1"]) == {"servable", "bare", "bare_other_fold"} and len(off["golden"]) > 0
    # bf16: grappler's rewrite on every call of the process (TF Serving's --mixed_precision=bfloat16): answers move
    bf16 = onednn_compare._run([str(job)], onednn_compare.SETTINGS["bf16"], paths.REPO_ROOT)
    assert bf16["onednn_enabled"] is True and bf16["math"] == "bf16"
    from tools.goldenset.measure import max_difference

    assert max_difference(bf16["golden"], off["golden"]) > 1e-5
    # weights assumed frozen: every kernel of the worker sees one filter only, so its answers stay fp32's
    frozen = onednn_compare._run([str(job)], onednn_compare.SETTINGS["frozen"], paths.REPO_ROOT)
    assert frozen["onednn_enabled"] is True and frozen["env"]["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] == "1"
    assert max_difference(frozen["golden"], off["golden"]) < 1e-5


@pytest.mark.slow(seconds=40)
def test_the_kernel_census_names_what_each_setting_ran(tiny_export, tmp_path):
    """One untimed process per setting under ONEDNN_VERBOSE: oneDNN's own account of which kernels ran."""
    import pickle

    from tools.bench import onednn_compare, onednn_kernels

    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps({"config": tiny_export.config, "batch_sizes": [1], "samples": 1,
                                  "sample_seconds": 0.001}))

    def census(name):
        env = {**onednn_compare.SETTINGS[name], onednn_kernels.VERBOSE_ENV: onednn_kernels.VERBOSE_VALUE}
        return onednn_compare._run(["--kernels", str(job)], env, paths.REPO_ROOT)["kernels"]

    on = census("on")
    convolutions = onednn_kernels.convolutions(on)
    assert on["isa"] and on["version"].startswith("v3.") and convolutions
    assert {p["dtype"] for p in convolutions} == {"f32"}
    assert " in f32 (" in onednn_kernels.describe(on)
    # off: no oneDNN primitive, but TensorFlow's own convolutions still multiply with oneDNN's sgemm
    off = census("off")
    assert off["primitives"] == [] and off["sgemm_calls"] > 0
    assert onednn_compare.kernel_problems({"on": on, "off": off}) == []
    # bf16: TensorFlow hands bf16 ops to oneDNN where the CPU has AVX512F (tensorflow/core/graph/mkl_graph_util.h
    # IsBF16SupportedByOneDNNOnThisCPU); elsewhere they run on its own bf16 kernels
    bf16 = census("bf16")
    if "avx512f" in machine.all_flags():
        assert {p["dtype"] for p in onednn_kernels.convolutions(bf16)} == {"bf16"}


def test_child_env_unsets_what_a_setting_leaves_to_tensorflow(monkeypatch):
    import subprocess
    import sys

    from tools import onednn

    env = {**__import__("os").environ, **onednn.child_env({"TF_ENABLE_ONEDNN_OPTS": None,
                                                           "TFSG_MIXED_PRECISION": "bfloat16"})}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # inherited from the parent, as tools.proc.run merges environments
    env["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] = "1"  # a stray value in the user's environment: dropped too
    code = ("import json; from tools import onednn; onednn.apply_child_env(); print(json.dumps(onednn.in_force()))")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert json.loads(done.stdout) == {"TF_ENABLE_ONEDNN_OPTS": None, "TF_SET_ONEDNN_FPMATH_MODE": None,
                                       "TFSG_MIXED_PRECISION": "bfloat16", "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": None}


def test_entry_points_drop_the_frozen_weights_assumption_before_tensorflow_loads():
    """With TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1, eager convolutions reuse the first filter a kernel saw (checked:
    docs/client-and-bench.md): every entry point of ours drops it, as `python -m tools` does here."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1"}
    code = ("import os, sys; from tools import onednn; onednn.prepare(); "
            "print(os.environ.get('TF_ONEDNN_ASSUME_FROZEN_WEIGHTS'), 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["None", "False"]


def test_settings_and_tensorflow_default_follow_the_cpu_flags():
    from tools.bench import onednn_compare

    # bf16 dot products: AVX512_BF16 (AMD Zen 4/5, Cooper Lake) or AMX-BF16 (Sapphire Rapids and later)
    sapphire_rapids = {"avx2", "fma", "avx512f", "amx_tile", "amx_bf16", "amx_int8"}
    assert onednn_compare.settings_for(sapphire_rapids)[0] == ["on", "off", "frozen", "bf16"]
    zen4 = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}
    assert onednn_compare.settings_for(zen4)[0] == ["on", "off", "frozen", "bf16"]
    # AVX-512 without bf16 (Skylake, Cascade Lake) and AVX2 CPUs: bf16 kernels slower than fp32, not measured
    for cpu in ({"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}, {"avx2", "fma"}):
        names, why = onednn_compare.settings_for(cpu)
        assert names == ["on", "off", "frozen"] and "avx512_bf16" in why and "amx_bf16" in why
    # tensorflow/core/util/port.cc DefaultOneDnnPolicy: VNNI/BF16/AMX turn it on, whatever the vendor
    assert onednn_compare.tensorflow_default({"avx2", "avx512f"}) == ("off", [])
    assert onednn_compare.tensorflow_default({"avx512_vnni"}) == ("on", ["avx512_vnni"])


def test_recommend_picks_the_fastest_within_tolerance():
    from tools.bench.onednn_compare import recommend

    def batch(on, off, bf16):
        return {"images_per_s": {"on:servable": {"median": on}, "off:servable": {"median": off},
                                 "bf16:servable": {"median": bf16}}}
    batches = [batch(10, 8, 20), batch(12, 13, 25), batch(11, 9, 22)]
    assert recommend(batches, ["on", "off", "bf16"], {"on": True, "off": True, "bf16": True})["setting"] == "bf16"
    assert recommend(batches, ["on", "off", "bf16"], {"on": True, "off": True, "bf16": False})["setting"] == "on"


def test_copy_plots_into_docs(tmp_path):
    from tools.bench import report

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / paths.BENCH_ONEDNN_PNG).write_bytes(b"png")
    report.copy_plots(tmp_path / "out", tmp_path / "docs")
    assert [p.name for p in (tmp_path / "docs").iterdir()] == [paths.BENCH_ONEDNN_PNG]


def test_cold_start_runs_processes_without_warmup_only_in_the_contrast_rounds(tmp_path, monkeypatch):
    """Every round runs a process with warmup (the first-request target's sample); only the first
    cold_contrast_rounds also run one without, alternating which goes first."""
    import types
    from dataclasses import replace

    import export.api
    from tools import proc
    from tools.bench import measure

    def fake_export(config, output_dir, verbose):
        version_dir = output_dir / "m" / "channels_last" / "1"
        version_dir.mkdir(parents=True)
        (version_dir / "saved_model.pb").write_bytes(b"x")
        return {"channels_last": version_dir}

    warmups = []

    def fake_run(cmd, **kwargs):
        warmups.append("--warmup" in cmd)
        keys = ("import_s", "load_s", "warmup_s", "first_ms", "steady_median_ms", "first_over_steady")
        return types.SimpleNamespace(stdout=json.dumps({"warmup": warmups[-1], **dict.fromkeys(keys, 1.0)}) + "\n")

    monkeypatch.setattr(export.api, "export_model", fake_export)
    monkeypatch.setattr(proc, "run", fake_run)
    plan = replace(measure.Plan(), cold_rounds=5, cold_contrast_rounds=3)
    result = measure.export_and_cold_start(None, plan, lambda message: None, tmp_path)
    assert warmups == [False, True, True, False, False, True, True, True]
    assert result["warmup"]["first_ms"]["n"] == 5 and result["no_warmup"]["first_ms"]["n"] == 3
