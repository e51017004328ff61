"""Read the ops of a SavedModel or a tf.function graph, including every function in its library."""
from __future__ import annotations

from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2


def nodes_of_graph_def(graph_def):
    yield from graph_def.node
    for fn in graph_def.library.function:
        yield from fn.node_def


def saved_model_nodes(export_dir: Path):
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    for meta in sm.meta_graphs:
        yield from nodes_of_graph_def(meta.graph_def)


def conv_formats(nodes) -> dict[str, int]:
    """data_format -> number of Conv2D nodes with it."""
    counts: dict[str, int] = {}
    for node in nodes:
        if node.op == "Conv2D":
            fmt = node.attr["data_format"].s.decode() or "NHWC"
            counts[fmt] = counts.get(fmt, 0) + 1
    return counts
