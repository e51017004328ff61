"""Graph checks: the TensorFlow that wrote the SavedModel against the TF Serving image that will load it,
every op against TensorFlow's op registry, and the data layout of convolutions against the target's device.

No TF Serving binary runs here, so the installed TensorFlow's op registry stands in for the one compiled
into the serving image; the check says when that is exact (same minor release) and refuses when it cannot
be (serving image older than the installed TensorFlow).
"""
from __future__ import annotations

import re
from collections import Counter

from tools.config import Config
from tools.validate.report import Report

# Ops whose NCHW form the stock TF Serving CPU image has no kernel for.
CPU_NHWC_ONLY = {"Conv2D", "Conv3D", "DepthwiseConv2dNative", "MaxPool", "MaxPoolV2", "MaxPool3D", "AvgPool",
                 "AvgPool3D", "_FusedConv2D"}
CONVOLUTIONS = {"Conv2D", "Conv3D", "DepthwiseConv2dNative", "_FusedConv2D"}


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def _fmt(v: tuple[int, ...] | None) -> str:
    return ".".join(map(str, v)) if v else "unknown"


def all_nodes(meta_graph):
    """(function name or None, NodeDef) for the graph and every function in its library."""
    for node in meta_graph.graph_def.node:
        yield None, node
    for fn in meta_graph.graph_def.library.function:
        for node in fn.node_def:
            yield fn.signature.name, node


def op_histogram(meta_graph) -> Counter:
    """Op type -> count over the graph and its function library; calls of library functions by name excluded."""
    functions = {fn.signature.name for fn in meta_graph.graph_def.library.function}
    return Counter(node.op for _, node in all_nodes(meta_graph) if node.op not in functions)


def check_tensorflow_version(report: Report, layout: str, meta_graph, config: Config) -> None:
    saved_with = meta_graph.meta_info_def.tensorflow_version
    recorded = version_tuple(saved_with)
    targets = config.targets_for_layout(layout)
    problems, serving = [], {}
    if recorded is None:
        problems.append(f"the SavedModel records no readable TensorFlow version ({saved_with!r})")
    for t in targets:
        sv = t.image.serving_version
        serving[t.name] = _fmt(sv)
        if sv is None:
            problems.append(f"target {t.name}: cannot tell the TF Serving version of image {t.image.reference}; "
                            "use a release tag such as 2.20.0")
        elif recorded and recorded[:2] > sv[:2]:
            problems.append(f"written by TensorFlow {saved_with}, newer than TF Serving {_fmt(sv)} of target "
                            f"{t.name} ({t.image.reference}): that server may not know its ops or attributes")
    if not targets:
        detail = f"written by TensorFlow {saved_with}; no target in model.yaml serves {layout}"
    else:
        detail = f"written by TensorFlow {saved_with}, not newer than TF Serving " + ", ".join(
            f"{v} ({name})" for name, v in serving.items())
    report.add("graph.tensorflow_version", layout, not problems, "; ".join(problems) or detail,
               saved_with=saved_with, serving=serving)


def check_ops(report: Report, layout: str, meta_graph, config: Config) -> None:
    import tensorflow as tf
    from tensorflow.python.framework import kernels, op_def_registry

    histogram = op_histogram(meta_graph)
    ops = sorted(histogram)
    installed = version_tuple(tf.__version__)
    unknown = [op for op in ops if op_def_registry.get(op) is None]
    problems, notes = [], []
    if unknown:
        problems.append(f"ops unknown to TensorFlow {tf.__version__}: {', '.join(unknown)}")
    targets = config.targets_for_layout(layout)
    for t in targets:
        sv = t.image.serving_version
        if sv is None:
            problems.append(f"target {t.name}: cannot tell which TensorFlow image {t.image.reference} has")
        elif sv[:2] == installed[:2]:
            notes.append(f"installed TensorFlow {tf.__version__} stands in for TF Serving {_fmt(sv)} ({t.name})")
        elif sv[:2] > installed[:2]:
            # TensorFlow's compatibility guarantee: ops are not removed within a major version.
            notes.append(f"TF Serving {_fmt(sv)} ({t.name}) is newer than the installed TensorFlow "
                         f"{tf.__version__}, and ops are never removed within TensorFlow {sv[0]}.x")
        else:
            problems.append(f"target {t.name} serves with TF Serving {_fmt(sv)}, older than the installed TensorFlow "
                            f"{tf.__version__}: its op registry cannot be checked here; validate with TensorFlow "
                            f"{sv[0]}.{sv[1]}")
    no_cpu_kernel = []
    if any(not t.is_gpu for t in targets):
        for op in ops:
            devices = {k.device_type for k in kernels.get_registered_kernels_for_op(op).kernel}
            if op_def_registry.get(op) is not None and not devices & {"CPU", "DEFAULT"}:
                no_cpu_kernel.append(op)
        if no_cpu_kernel:
            problems.append(f"ops without a CPU kernel (served by a CPU target): {', '.join(no_cpu_kernel)}")
    detail = f"all {len(ops)} op types are registered in TensorFlow {tf.__version__}"
    if notes:
        detail += "; " + "; ".join(notes)
    report.add("graph.ops", layout, not problems, "; ".join(problems) or detail,
               op_types=len(ops), nodes=sum(histogram.values()),
               functions=len(meta_graph.graph_def.library.function), ops=ops)


def data_format(node) -> str | None:
    """The node's data_format, falling back to the op's default (SavedModels strip default attributes)."""
    from tensorflow.python.framework import op_def_registry

    if "data_format" in node.attr:
        return node.attr["data_format"].s.decode()
    op_def = op_def_registry.get(node.op)
    if op_def is None:
        return None
    for attr in op_def.attr:
        if attr.name == "data_format" and attr.HasField("default_value"):
            return attr.default_value.s.decode()
    return None


def layout_census(meta_graph) -> dict:
    convs = Counter()
    nchw_cpu_only = Counter()
    nchw_other = Counter()
    for _, node in all_nodes(meta_graph):
        fmt = data_format(node)
        if fmt is None:
            continue
        nchw = fmt.startswith("NC")
        if node.op in CONVOLUTIONS:
            convs["nchw" if nchw else "nhwc"] += 1
        if nchw and node.op in CPU_NHWC_ONLY:
            nchw_cpu_only[node.op] += 1
        elif nchw:
            nchw_other[node.op] += 1
    return {"convolutions": sum(convs.values()), "nchw_convolutions": convs["nchw"], "nhwc_convolutions": convs["nhwc"],
            "nchw_cpu_unsupported": dict(nchw_cpu_only), "nchw_other": dict(nchw_other)}


def check_layout_guard(report: Report, layout: str, meta_graph, config: Config) -> None:
    census = layout_census(meta_graph)
    targets = config.targets_for_layout(layout)
    cpu = [t.name for t in targets if not t.is_gpu]
    gpu = [t.name for t in targets if t.is_gpu]
    problems = []
    bad_on_cpu = census["nchw_cpu_unsupported"]
    if layout == "channels_last" and bad_on_cpu:
        problems.append("NCHW " + ", ".join(f"{op} x{n}" for op, n in bad_on_cpu.items()) +
                        " in a channels_last export" + (f" served by CPU target {', '.join(cpu)}: the CPU serving "
                                                        "image cannot run them" if cpu else ""))
    if layout == "channels_first":
        if census["nhwc_convolutions"]:
            problems.append(f"{census['nhwc_convolutions']} of {census['convolutions']} convolutions are NHWC in a "
                            "channels_first export")
        if cpu:
            problems.append(f"channels_first is served by CPU target {', '.join(cpu)}: the CPU serving image "
                            "cannot run NCHW convolutions")
    if problems:
        detail = "; ".join(problems)
    elif layout == "channels_first":
        detail = (f"all {census['convolutions']} convolutions run NCHW" if census["convolutions"] else
                  "no convolutions in the graph") + (f", served by GPU target {', '.join(gpu)}" if gpu else "")
    else:
        detail = f"no NCHW convolution or pooling among {census['convolutions']} convolutions" + (
            f", safe for CPU target {', '.join(cpu)}" if cpu else "")
    report.add("graph.layout", layout, not problems, detail, **census, targets=[t.name for t in targets])
