"""Names in saved_model.pb that do not depend on what the exporting process did before.

TensorFlow names every traced function `<name>_<n>` with a process-wide counter (tensorflow/python/framework/ops.py
uid(), used by eager/polymorphic_function/concrete_function.py _inference_name and ops/control_flow_util_v2.py
unique_fn_name), and the same counter reaches a few argument names and `_user_specified_name` attributes. So the
same model exported by a fresh process, by a process that traced other functions first (a notebook, a test
session), or as one layout alone instead of after the other, differs in those numbers and nothing else. Here each
counter value is replaced by its rank among the export's own counter values: the order of tracing inside one export
is fixed by the code, where the counter's starting point is not.

Only fields that hold function names, function argument names and their references, and the numeric
`_user_specified_name` values are rewritten: never a constant, a label or a node name the signatures refer to.
"""
from __future__ import annotations

import re
from pathlib import Path

from tools import paths

_SUFFIX = re.compile(r"_(\d+)$")
_TOKEN = re.compile(r"(?<=_)(\d+)(?![0-9])")
_USER_NAME = "_user_specified_name"


def canonicalize_saved_model(directory: Path) -> None:
    """Rewrite <directory>/saved_model.pb with counter-independent names (see the module docstring). It runs inside
    the export's hidden temporary directory, so a failure leaves no half-written version."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(directory) / paths.SAVED_MODEL_PB
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(path.read_bytes())
    for meta in saved.meta_graphs:
        _canonicalize_meta_graph(meta)
    path.write_bytes(saved.SerializeToString(deterministic=True))


def _canonicalize_meta_graph(meta) -> None:
    library = meta.graph_def.library
    suffixed = {f.signature.name: m for f in library.function if (m := _SUFFIX.search(f.signature.name))}
    counters = {int(m.group(1)) for m in suffixed.values()}
    if not counters:
        return
    user_names = {int(v.s) for f in library.function for attrs in f.arg_attr.values()
                  for key, v in attrs.attr.items() if key == _USER_NAME and v.s.isdigit()}
    rank = {n: i for i, n in enumerate(sorted(counters | user_names), 1)}
    # old function name -> new: references are looked up whole, never matched as text
    functions = {old: f"{old[:m.start()]}_{rank[int(m.group(1))]}" for old, m in suffixed.items()}
    if len(set(functions.values())) != len(functions):
        raise RuntimeError("renaming the exported functions by their tracing order made two of them equal")

    def arg_name(text: str) -> str:
        # A while loop's unused arguments carry its condition function's name: `<cond fn>___redundant_placeholder0`
        return _TOKEN.sub(lambda m: str(rank[int(m.group(1))]) if int(m.group(1)) in counters else m.group(1), text)

    def attrs(attr_map) -> None:
        for key, value in attr_map.items():
            if value.HasField("func"):
                value.func.name = functions.get(value.func.name, value.func.name)
            for fn in value.list.func:
                fn.name = functions.get(fn.name, fn.name)
            if key == _USER_NAME and value.s.isdigit() and int(value.s) in rank:
                value.s = str(rank[int(value.s)]).encode()

    def ref(text: str, args: dict) -> str:
        control, body = ("^", text[1:]) if text.startswith("^") else ("", text)
        base, sep, rest = body.partition(":")
        return control + args.get(base, base) + sep + rest

    for node in meta.graph_def.node:
        attrs(node.attr)
    for f in library.function:
        f.signature.name = functions.get(f.signature.name, f.signature.name)
        args = {}
        for arg in f.signature.input_arg:
            args[arg.name] = arg_name(arg.name)
            arg.name = args[arg.name]
        if len(set(args.values())) != len(args):
            raise RuntimeError(f"renaming the arguments of {f.signature.name} made two of them equal")
        for node in f.node_def:
            node.input[:] = [ref(i, args) for i in node.input]
            attrs(node.attr)
        for key in list(f.ret):
            f.ret[key] = ref(f.ret[key], args)
        for attr in f.arg_attr.values():
            attrs(attr.attr)
        attrs(f.attr)
    for grad in library.gradient:
        grad.function_name = functions.get(grad.function_name, grad.function_name)
        grad.gradient_func = functions.get(grad.gradient_func, grad.gradient_func)
    # The library's order followed the old names; sorted by the new ones it is the same in every process.
    ordered = [type(f).FromString(f.SerializeToString(deterministic=True))
               for f in sorted(library.function, key=lambda f: f.signature.name)]
    del library.function[:]
    library.function.extend(ordered)

    graph = meta.object_graph_def
    for key in list(graph.concrete_functions):
        if key in functions:
            graph.concrete_functions[functions[key]].CopyFrom(graph.concrete_functions[key])
            del graph.concrete_functions[key]
    for node in graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            node.function.concrete_functions[:] = [functions.get(n, n) for n in node.function.concrete_functions]
        elif kind == "bare_concrete_function":
            bare = node.bare_concrete_function
            bare.concrete_function_name = functions.get(bare.concrete_function_name, bare.concrete_function_name)
        elif kind == "captured_tensor":
            captured = node.captured_tensor
            captured.concrete_function = functions.get(captured.concrete_function, captured.concrete_function)
