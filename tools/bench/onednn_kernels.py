"""Which oneDNN kernels a setting really ran: oneDNN's verbose mode read back.

A speed ratio alone cannot tell "bf16 ran on AMX" from "bf16 ran on AVX512_BF16" or "oneDNN fell back to a slower
kernel". oneDNN says which implementation executed each primitive when ONEDNN_VERBOSE asks it to
(oneapi-src/oneDNN doc/performance_considerations/verbose.md: `profile_exec` prints one line per primitive
execution on stdout; the first lines name the version and the CPU ISA it dispatches to). Line format of oneDNN 3.x
(TensorFlow 2.20 bundles 3.7.3), checked against its output here:

    onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support
    onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_bf16,forward_training,
        src:bf16::blocked:acdb::f0 wei:bf16:ap:blocked:AcdB64a2b::f0 ...,attr-scratchpad:user,alg:...,mb2_ic3oc64...,1.74

The implementation's suffix is the ISA of its code: `avx512_core_amx` (AMX tiles), `avx512_core_bf16`
(AVX512_BF16 dot products), `avx512_core` (AVX-512), `avx2`. Verbose printing slows every primitive, so the
census runs in a process of its own (tools/bench/onednn_worker.py --kernels), never in a timed one.

oneDNN off is not "no oneDNN code": TensorFlow's own (Eigen) convolutions and matmuls multiply their blocks with
oneDNN's single-threaded sgemm (openxla/xla xla/tsl/framework/contraction/eigen_contraction_kernel.h, which
TensorFlow 2.20 uses: "Use MKL-DNN single threaded sgemm for float" unless built with
`--define disable_eigen_mkldnn_contraction_kernel=true`). Those calls print as `gemm_api` lines without an
implementation; they are counted apart (`sgemm_calls`), not as primitives.
"""
from __future__ import annotations

from collections import Counter

VERBOSE_ENV = "ONEDNN_VERBOSE"
VERBOSE_VALUE = "profile_exec"
_MARKERS = ("onednn_verbose", "dnnl_verbose")  # dnnl_: oneDNN before 3.0 (older TensorFlow builds)


def parse(stdout: str) -> dict:
    """The census of one process's verbose output: oneDNN's version and ISA, and per executed primitive kind,
    implementation and source data type, how many times it ran."""
    isa = version = None
    sgemm = 0
    counts: Counter = Counter()
    for line in stdout.splitlines():
        fields = line.split(",")
        if fields[0] not in _MARKERS:
            continue
        if "exec" in fields:
            i = fields.index("exec")
            if len(fields) < i + 6:
                continue
            kind, impl, descriptors = fields[i + 2], fields[i + 3], fields[i + 5]
            if kind == "gemm_api":
                sgemm += 1
            else:
                counts[(kind, impl, _source_type(descriptors))] += 1
        elif "info" in fields:
            for f in fields[fields.index("info") + 1:]:
                if f.startswith("isa:"):
                    isa = f[len("isa:"):]
                elif f.startswith(("oneDNN v", "DNNL v")):
                    version = f.split(" ")[1]
    primitives = [{"kind": k, "impl": impl, "dtype": dtype, "count": n}
                  for (k, impl, dtype), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"isa": isa, "version": version, "primitives": primitives, "sgemm_calls": sgemm}


def _source_type(descriptors: str) -> str:
    """`src:bf16::blocked:acdb::f0 wei:...` -> bf16 (the data type of the primitive's source)."""
    for d in descriptors.split(" "):
        if d.startswith("src:") or d.startswith("src_"):
            return d[4:].split(":")[0]
    return "?"


def isa_of(impl: str) -> str:
    """The ISA an implementation's code was written for: the part after its last colon when it names one."""
    tail = impl.rsplit(":", 1)[-1]
    return tail if tail.startswith(("avx", "sse", "amx")) else impl


def convolutions(census: dict) -> list[dict]:
    return [p for p in census["primitives"] if p["kind"] == "convolution"]


def describe(census: dict | None) -> str:
    """One line: what ran the convolutions (the model's work), e.g. `avx512_core_bf16 in bf16 (53 of 53)`."""
    if not census or not census["primitives"]:
        sgemm = (census or {}).get("sgemm_calls")
        return "TensorFlow's own kernels, no oneDNN primitive" + (
            f" (their matrix products: {sgemm} call{'s' if sgemm != 1 else ''} of oneDNN's sgemm)" if sgemm else "")
    convs = convolutions(census)
    total = sum(p["count"] for p in convs)
    if not total:
        return "no convolution ran on oneDNN"
    by: Counter = Counter()
    for p in convs:
        by[(isa_of(p["impl"]), p["dtype"])] += p["count"]
    return ", ".join(f"{isa} in {dtype} ({n} of {total})" for (isa, dtype), n in by.most_common())
