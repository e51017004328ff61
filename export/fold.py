"""Fold inference-mode batch normalization into the convolution or dense layer before it.

In inference BatchNormalization is y = (x - mean) * gamma / sqrt(var + eps) + beta per channel, so after a
linear layer it can be moved into that layer's kernel and bias. Grappler cannot do it for a SavedModel: the
statistics are variables, which TF Serving restores and reads on every call, not constants it could fold.
Keras 2 emitted FusedBatchNormV3, which grappler's remapper fused into the convolution on CPU; Keras 3 writes the
normalization as separate multiplies and adds over every activation, 53 of each in ResNet50
(keras/src/backend/tensorflow/nn.py batch_normalization -> tf.nn.batch_normalization). Folding them is the
classic inference rewrite (TF-TRT, TFLite's converter, OpenVINO do the same); measured in docs/client-and-bench.md.

Only a normalization that provably computes the same function is folded: it is the only consumer of a Conv2D,
DepthwiseConv2D or Dense with a linear activation, each called once, it normalizes that layer's output channels,
and nothing forces it into training mode. Anything else is left as it was. The model is rebuilt from its config
(as export/layout.py does); the folded normalization becomes an Identity layer, so every layer keeps its name.
"""
from __future__ import annotations

import copy

import keras
import numpy as np

_LINEAR = {None, "linear"}
_FOLDABLE = {"Conv2D", "DepthwiseConv2D", "Dense"}
_CONTAINERS = {"Functional", "Model", "Sequential"}


def fold_batch_norms(model: keras.Model) -> tuple[keras.Model, int]:
    """(a new model with every foldable BatchNormalization folded, how many were folded). With none to fold,
    or a model whose config cannot be rebuilt, the model itself and 0."""
    config = copy.deepcopy(model.get_config())
    if "layers" not in config:
        return model, 0
    pairs: dict[str, str] = {}  # "path/bn" -> "path/producer", across nested models
    _plan(config, type(model).__name__, "", pairs)
    if not pairs:
        return model, 0
    kind = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    try:
        folded = kind.from_config(config)
    except Exception:  # a custom layer needing custom_objects: serve the model as it is, unfolded
        return model, 0
    _copy_weights(model, folded, "", pairs)
    return folded, len(pairs)


def _plan(config: dict, kind: str, prefix: str, pairs: dict[str, str]) -> None:
    """Rewrite `config` in place (producer gets a bias, the normalization becomes Identity), recording pairs."""
    layers = config["layers"]
    for layer in layers:
        if layer["class_name"] in _CONTAINERS and "layers" in layer["config"]:
            _plan(layer["config"], layer["class_name"], f"{prefix}{_name(layer)}/", pairs)
    by_name = {_name(layer): layer for layer in layers}
    if kind == "Sequential":
        candidates = [(prev, layer) for prev, layer in zip(layers, layers[1:])]
    else:
        consumers = _consumers(config)
        candidates = []
        for layer in layers:
            source = _single_source(layer)
            if source is not None and consumers.get(source) == 1 and source in by_name:
                candidates.append((by_name[source], layer))
    for producer, norm in candidates:
        if _foldable(producer, norm):
            producer["config"]["use_bias"] = True
            norm["class_name"], norm["module"], norm["registered_name"] = "Identity", "keras.layers", None
            norm["config"] = {"name": _name(norm), "trainable": norm["config"].get("trainable", True),
                              "dtype": norm["config"].get("dtype")}
            norm.pop("build_config", None)
            for node in norm.get("inbound_nodes", []):
                node["kwargs"] = {}
            pairs[prefix + _name(norm)] = prefix + _name(producer)


def _name(layer: dict) -> str:
    return layer.get("name") or layer["config"]["name"]


def _tensors(value):
    """Every __keras_tensor__ reference in an inbound node's args or kwargs, however nested."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield value["config"]["keras_history"]
        else:
            for v in value.values():
                yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def _consumers(config: dict) -> dict[str, int]:
    """How many times each layer's output is used: by other layers' calls and as a model output."""
    counts: dict[str, int] = {}
    for layer in config["layers"]:
        for node in layer.get("inbound_nodes", []):
            for history in _tensors(node):
                counts[history[0]] = counts.get(history[0], 0) + 1
    outputs = config.get("output_layers", [])
    outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
    for name, *_ in outputs:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _single_source(layer: dict) -> str | None:
    """The layer feeding this one, if it is called once on one tensor of a layer called once."""
    nodes = layer.get("inbound_nodes", [])
    if len(nodes) != 1:
        return None
    histories = list(_tensors(nodes[0]["args"]))
    if len(histories) != 1 or list(histories[0][1:]) != [0, 0]:
        return None
    return histories[0][0]


def _foldable(producer: dict, norm: dict) -> bool:
    if norm["class_name"] != "BatchNormalization" or producer["class_name"] not in _FOLDABLE:
        return False
    p, n = producer["config"], norm["config"]
    if len(producer.get("inbound_nodes", [None])) != 1 or p.get("activation") not in _LINEAR:
        return False
    if n.get("renorm") or n.get("synchronized"):
        return False
    for node in norm.get("inbound_nodes", []):
        if node["kwargs"].get("training") not in (None, False):
            return False
    axis = n.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if producer["class_name"] == "Dense":
        return axis == -1
    # Source models are channels_last (export/source.py); export/layout.py converts after folding.
    return p.get("data_format", "channels_last") == "channels_last" and axis in (-1, 3)


def _copy_weights(old: keras.Model, new: keras.Model, prefix: str, pairs: dict[str, str]) -> None:
    norms_of = {producer: norm for norm, producer in pairs.items()}
    for layer in old.layers:
        path = prefix + layer.name
        target = new.get_layer(layer.name)
        if path in pairs:
            continue  # now an Identity: its statistics live in the producer
        if isinstance(layer, keras.Model):
            _copy_weights(layer, target, path + "/", pairs)
        elif path in norms_of:
            target.set_weights(_folded(layer, old.get_layer(norms_of[path].rsplit("/", 1)[-1])))
        else:
            target.set_weights(layer.get_weights())


def _folded(producer, norm) -> list[np.ndarray]:
    """[kernel, bias] of `producer` with `norm` folded in, computed in float64."""
    kernel = np.asarray(producer.kernel.numpy(), np.float64)
    bias = np.asarray(producer.bias.numpy(), np.float64) if producer.use_bias else 0.0
    mean = np.asarray(norm.moving_mean.numpy(), np.float64)
    var = np.asarray(norm.moving_variance.numpy(), np.float64)
    gamma = np.asarray(norm.gamma.numpy(), np.float64) if norm.scale else 1.0
    beta = np.asarray(norm.beta.numpy(), np.float64) if norm.center else 0.0
    scale = gamma / np.sqrt(var + norm.epsilon)
    if type(producer).__name__ == "DepthwiseConv2D":  # kernel [kh, kw, in, multiplier]; output channel in*m + j
        kernel = kernel * np.reshape(scale, kernel.shape[2:])
    else:  # Conv2D [kh, kw, in/groups, out], Dense [in, out]
        kernel = kernel * scale
    dtype = producer.kernel.numpy().dtype
    return [kernel.astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]
