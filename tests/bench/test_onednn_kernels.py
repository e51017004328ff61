"""oneDNN's verbose lines read back (tools/bench/onednn_kernels.py): lines as oneDNN 3.7.3 in TensorFlow 2.20 printed
them on an AMD Zen 5, the timestamped v0 form of oneDNN's doc/performance_considerations/verbose.md, and an AMX
implementation name in the same form."""
from __future__ import annotations

from tools.bench import onednn_compare
from tools.bench.onednn_kernels import describe, isa_of, parse

HEADER = """\
onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)
onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support
onednn_verbose,v1,info,gpu,runtime:none
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,\
attributes,auxiliary,problem_desc,exec_time
"""
CONV_BF16 = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_bf16,forward_training,"
             "src:bf16::blocked:acdb::f0 wei:bf16:ap:blocked:AcdB64a2b::f0 bia:bf16:a:blocked:a::f0 "
             "dst:bf16::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,"
             "mb2_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3,1.74097")
CONV_1X1 = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_1x1:avx512_core_bf16,forward_training,"
            "src:bf16::blocked:acdb::f0 wei:bf16:a:blocked:AcdB64a2b::f0 dst:bf16::blocked:acdb::f0,,"
            "alg:convolution_direct,mb2_ic64oc256_ih56oh56kh1sh1dh0ph0_iw56ow56kw1sw1dw0pw0,0.5")
REORDER = ("onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba::f0 "
           "dst:bf16::blocked:Acdb64a::f0,,,64x3x7x7,0.89917")
SGEMM = ("onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0 wei_f32::blocked:ab:f0 "
         "dst_f32::blocked:ab:f0,,,432x147:147x16,23.0991")


def test_a_bf16_process_is_counted_per_kind_implementation_and_type():
    census = parse(HEADER + "\n".join([CONV_BF16, CONV_1X1, CONV_1X1, REORDER, '{"onednn_enabled": true}']))
    assert census["isa"] == "Intel AVX-512 with Intel DL Boost and bfloat16 support"
    assert census["version"] == "v3.7.3" and census["sgemm_calls"] == 0
    assert census["primitives"] == [
        {"kind": "convolution", "impl": "brgconv_1x1:avx512_core_bf16", "dtype": "bf16", "count": 2},
        {"kind": "convolution", "impl": "brg_conv_fwd:avx512_core_bf16", "dtype": "bf16", "count": 1},
        {"kind": "reorder", "impl": "jit:uni", "dtype": "f32", "count": 1}]
    assert describe(census) == "avx512_core_bf16 in bf16 (3 of 3)"


def test_amx_and_the_timestamped_older_form_are_read_alike():
    amx = CONV_BF16.replace("avx512_core_bf16", "avx512_core_amx")
    doc = ("onednn_verbose,v0,1693533460272.561035,primitive,exec,cpu,convolution,jit:avx512_core,forward_training,"
           "src_f32:a:blocked:aBcd16b::f0 wei_f32:a:blocked:ABcd16b16a::f0 bia_f32:a:blocked:a::f0 "
           "dst_f32:a:blocked:aBcd16b::f0,,alg:convolution_direct,mb2_ic16oc16_ih7oh7kh5ph2,0.0878906")
    census = parse("\n".join([amx, amx, doc]))
    assert describe(census) == "avx512_core_amx in bf16 (2 of 3), avx512_core in f32 (1 of 3)"
    assert census["isa"] is None  # no header line: nothing invented
    assert isa_of("x64:gemm:jit") == "x64:gemm:jit" and isa_of("jit:avx2") == "avx2"


def test_onednn_off_runs_no_primitive_but_its_sgemm_is_counted():
    census = parse(HEADER + "\n".join([SGEMM] * 5) + "\nsome other output\n")
    assert census["primitives"] == [] and census["sgemm_calls"] == 5
    assert describe(census) == "TensorFlow's own kernels, no oneDNN primitive (their matrix products: 5 calls of " \
                               "oneDNN's sgemm)"
    assert describe(parse("")) == "TensorFlow's own kernels, no oneDNN primitive"


def test_the_census_contradicting_the_setting_is_a_problem():
    with_convs, none = parse(CONV_BF16), parse(SGEMM)
    assert onednn_compare.kernel_problems({"on": with_convs, "off": none}) == []
    assert onednn_compare.kernel_problems({"on": none, "off": with_convs}) == [
        "on: no convolution ran on oneDNN (TensorFlow's own kernels, no oneDNN primitive (their matrix products: 1 "
        "call of oneDNN's sgemm))",
        "off: oneDNN ran 1 primitive(s) (avx512_core_bf16 in bf16 (1 of 1))"]
