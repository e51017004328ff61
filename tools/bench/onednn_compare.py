"""oneDNN on vs off, and bf16 math where the CPU has it, for the servable and the bare model: each setting in
its own process (TensorFlow reads the oneDNN switch once, at start-up), processes interleaved round by round.

Per round every setting runs one fresh process (rotating the order), which times the servable and the bare
model at each batch size (tools/bench/onednn_worker.py); a round gives one time ratio per pair of settings, and
the report gives their median over rounds with the spread. Each setting also answers the golden set
(tools/goldenset), and its answers are compared with fp32 (oneDNN on, and off). A last process with
the variables unset shows which setting TensorFlow picks by itself on this CPU.
"""
from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

from tools import onednn, paths, proc
from tools.config import CpuMath
from tools.bench import onednn_kernels
from tools.bench.timing import spread

# The settings compared, each a CPU target's model.yaml settings, and the environment its worker processes run with
# (tools/onednn.py process_env: what a validation child of such a target gets too; None: unset). "auto" is what
# TensorFlow picks with the variables unset. bf16 is `math: bf16`: TF Serving's --mixed_precision=bfloat16,
# grappler's bf16 rewrite (tools/grappler.py). "frozen" is `frozen_weights: true`: TF_ONEDNN_ASSUME_FROZEN_WEIGHTS,
# whose kernels keep each reordered filter instead of reordering the weights on every call.
CPU_MATH = {"on": CpuMath("on"), "off": CpuMath("off"), "frozen": CpuMath("on", frozen_weights=True),
            "bf16": CpuMath("on", "bf16")}
SETTINGS = {name: onednn.process_env(settings) for name, settings in CPU_MATH.items()}
# What a CPU target in model.yaml says to serve with each setting.
MODEL_YAML = {"on": "onednn: on", "off": "onednn: off", "frozen": "onednn: on, frozen_weights: true",
              "bf16": "onednn: on, math: bf16"}
# Where bf16 can be faster than fp32: a CPU with bf16 dot products, AVX512_BF16 (AMD Zen 4 and 5, Intel Cooper Lake)
# or AMX-BF16 (Intel Sapphire Rapids and later). oneapi-src/oneDNN doc/programming_model/data_types.md "Hardware
# Limitations": bf16's minimal ISA is "Intel DL Boost with bfloat16 support"; on AVX512BW alone it is functional
# "for validation purposes", 3-4x slower than fp32. Elsewhere the bench would time a setting no one should serve.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# tensorflow/tensorflow tensorflow/core/util/port.cc DefaultOneDnnPolicy (Linux): oneDNN on by default when the
# CPU has any of these (whatever its vendor); /proc/cpuinfo names of port::CPUFeature AVX512_VNNI, AVX512_BF16,
# AVX_VNNI, AMX_TILE, AMX_INT8, AMX_BF16.
TF_DEFAULT_ON_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def settings_for(flags) -> tuple[list[str], str]:
    """The settings to measure on a CPU with these flags (all of /proc/cpuinfo's), and why bf16 is left out when
    it is."""
    if any(f in flags for f in BF16_FLAGS):
        return ["on", "off", "frozen", "bf16"], ""
    return ["on", "off", "frozen"], ("bf16 not measured: this CPU has no bf16 dot products (neither "
                           f"{' nor '.join(BF16_FLAGS)}), where oneDNN's bf16 kernels run 3-4x slower than fp32 "
                           "(oneDNN doc/programming_model/data_types.md)")


def tensorflow_default(all_flags: set[str]) -> tuple[str, list[str]]:
    have = [f for f in TF_DEFAULT_ON_FLAGS if f in all_flags]
    return ("on" if have else "off"), have


def _run(argv: list[str], env: dict, repo_root: Path) -> dict:
    """One worker process under `env` (None: unset); its JSON answer. Under ONEDNN_VERBOSE (asked by `env` only:
    verbose printing would slow a timed process), the census of the kernels it ran is added as "kernels"."""
    env = {onednn_kernels.VERBOSE_ENV: None, **env}
    result = proc.run([sys.executable, "-m", "tools.bench.onednn_worker", *argv], cwd=repo_root,
                      env={**onednn.child_env(env), "TF_CPP_MIN_LOG_LEVEL": "2"}, echo=False, timeout=1800)
    # oneDNN prints its verbose lines on the same stdout, flushed at its own pace: the answer is the last JSON line.
    answer = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    if env[onednn_kernels.VERBOSE_ENV] is not None:
        answer["kernels"] = onednn_kernels.parse(result.stdout)
    return answer


def compare(config, plan, progress, repo_root: Path, all_flags: set[str]) -> dict:
    from tools.config import golden_tolerance_for
    from tools.goldenset.measure import max_difference

    import time

    started = time.perf_counter()
    names, why_not = settings_for(all_flags)
    job = {"config": config, "batch_sizes": list(plan.batch_sizes), "samples": plan.onednn_samples,
           "sample_seconds": plan.sample_seconds}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix=paths.TMP_PREFIX + "bench-onednn-") as tmp:
        job_file = Path(tmp) / "job.pickle"
        job_file.write_bytes(pickle.dumps(job))
        for r in range(plan.onednn_rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                progress(f"oneDNN: round {r + 1}/{plan.onednn_rounds}, setting {name}, fresh process")
                runs[name].append(_run([str(job_file)], SETTINGS[name], repo_root))
        census = {}
        for name in names:  # untimed processes: verbose printing slows every primitive
            progress(f"oneDNN: the kernels setting {name} runs ({onednn_kernels.VERBOSE_ENV}, one call, not timed)")
            census[name] = _run(["--kernels", str(job_file)], {**SETTINGS[name], onednn_kernels.VERBOSE_ENV:
                                                              onednn_kernels.VERBOSE_VALUE}, repo_root)["kernels"]
    progress("oneDNN: what TensorFlow picks by itself (both variables unset)")
    auto = _run(["--probe"], {name: None for name in onednn.SETTINGS_VARS}, repo_root)
    predicted, have = tensorflow_default(all_flags)

    problems = [f"{n}: asked oneDNN {'off' if n == 'off' else 'on'}, TensorFlow reports "
                f"{'on' if run['onednn_enabled'] else 'off'}"
                for n in names for run in runs[n] if run["onednn_enabled"] != (n != "off")]
    problems += kernel_problems(census)
    batches = []
    for b in plan.batch_sizes:
        key = str(b)
        entry = {"batch_size": b, "images_per_s": {}, "ratios": {}}
        for n in names:
            for what in ("servable", "bare"):
                entry["images_per_s"][f"{n}:{what}"] = spread([b / run["seconds"][key][what] for run in runs[n]])
        for a, base in (("on", "off"), ("frozen", "on"), ("bf16", "on"), ("bf16", "off")):
            if a in names and base in names:
                for what in ("servable", "bare"):
                    values = [rb["seconds"][key][what] / ra["seconds"][key][what]
                              for ra, rb in zip(runs[a], runs[base])]  # throughput a / base, per round
                    entry["ratios"][f"{a}/{base}:{what}"] = {**spread(values), "values": values}
        # The bare model folded the other way against the export's fold, in the same processes (onednn_worker
        # _other_fold): throughput ratio per process, so per setting its spread is over the rounds.
        for n in names:
            values = [run["seconds"][key]["bare"] / run["seconds"][key]["bare_other_fold"]
                      for run in runs[n] if "bare_other_fold" in run["seconds"][key]]
            if values:
                entry.setdefault("other_fold", {})[n] = {**spread(values), "values": values}
        batches.append(entry)

    cpu_targets = [t for t in config.targets.values() if not t.is_gpu]
    tolerance = golden_tolerance_for(cpu_targets[0]).probability if cpu_targets else 1e-4
    answers = {n: runs[n][0]["golden"] for n in names}
    differences = {}
    for n in names:
        for ref in ("on", "off"):
            if n != ref:
                a, b = answers[n], answers[ref]
                differences[f"{n} vs {ref}"] = {
                    "max_abs_prob_diff": max_difference(a, b),
                    "top1_same": sum(x[0][0] == y[0][0] for x, y in zip(a, b)),
                    "images": len(a)}
    # on and off are both strict fp32 (they differ only in summation order); bf16 must stay within the tolerance
    # the clusters' golden-set replay allows the CPU target, against both, and so must frozen (a filter kept from
    # another call would show here).
    fp32_ok = {n: n in ("on", "off") or all(d["max_abs_prob_diff"] <= tolerance for k, d in differences.items()
                                     if k.startswith(n + " ")) for n in names}
    return {
        "settings": names, "not_measured": why_not, "fold": _fold_names(config), "rounds": plan.onednn_rounds,
        "samples_per_process": plan.onednn_samples, "env": {n: SETTINGS[n] for n in names}, "batches": batches,
        "golden_differences": differences, "golden_tolerance": tolerance, "within_tolerance": fp32_ok,
        "tensorflow_default": {"observed": "on" if auto["onednn_enabled"] else "off",
                               "predicted": predicted, "because_flags": have,
                               "rule": "tensorflow/core/util/port.cc DefaultOneDnnPolicy: on (Linux) when the CPU has "
                                       "any of " + ", ".join(TF_DEFAULT_ON_FLAGS)},
        "build_s": {n: [run["build_s"] for run in runs[n]] for n in names},
        "kernels": census,
        "problems": problems,
        "configured": {t.name: t.cpu_math.describe() for t in cpu_targets if t.cpu_math},
        # bf16 answers bit-identical to oneDNN fp32: the mode did not take effect, its speed is oneDNN on's noise
        "bf16_in_effect": None if "bf16" not in names else differences["bf16 vs on"]["max_abs_prob_diff"] != 0.0,
        "recommended": recommend(batches, names, {n: ok and not (n == "bf16" and
                                                                 differences["bf16 vs on"]["max_abs_prob_diff"] == 0.0)
                                                  for n, ok in fp32_ok.items()}),
        "seconds": time.perf_counter() - started,  # the report keeps it apart from the 6-minute target
    }


def kernel_problems(census: dict) -> list[str]:
    """What the kernel census contradicts: oneDNN primitives with oneDNN off, no oneDNN convolution with it on."""
    out = []
    for name, c in census.items():
        ran = sum(p["count"] for p in c["primitives"])
        if name == "off" and ran:
            out.append(f"off: oneDNN ran {ran} primitive(s) ({onednn_kernels.describe(c)})")
        elif name != "off" and not onednn_kernels.convolutions(c):
            out.append(f"{name}: no convolution ran on oneDNN ({onednn_kernels.describe(c)})")
    return out


def _fold_names(config) -> dict | None:
    """model.fold_batch_norms of the export, and the other way the worker times (None: folding is off)."""
    from tools.config import FOLD_COMPLETE

    fold = config.model.fold_batch_norms
    if not fold:
        return None
    return {"export": "complete" if fold == FOLD_COMPLETE else "shift apart",
            "other": "shift apart" if fold == FOLD_COMPLETE else "complete"}


def recommend(batches: list[dict], names: list[str], ok: dict) -> dict:
    """The setting to serve with: among those whose golden answers stay within the tolerance of strict fp32,
    the one whose servable is fastest at most batch sizes (medians); oneDNN on wins ties with off."""
    candidates = [n for n in names if ok.get(n)]
    wins = {n: 0 for n in candidates}
    for b in batches:
        best = max(candidates, key=lambda n: (b["images_per_s"][f"{n}:servable"]["median"], n == "on"))
        wins[best] += 1
    choice = max(candidates, key=lambda n: (wins[n], n == "on")) if candidates else "on"
    return {"setting": choice, "wins": wins, "candidates": candidates, "model_yaml": MODEL_YAML[choice]}
