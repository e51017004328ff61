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

A normalization whose output goes straight into a residual Add keeps its shift (beta) as a separate per-channel
add, a Rescaling(scale=1, offset=beta) under its name: folded completely, the convolution, its bias, the Add
and the ReLU after it match grappler's oneDNN pattern that fuses the Add into the convolution as a "sum"
post-op, and on an AVX2 CPU (AMD EPYC Zen 3) oneDNN 3's gemm convolution with that post-op took 7.6 ms
instead of 0.75 ms for each 56x56 1x1 expansion of ResNet50 at batch 1 (ONEDNN_VERBOSE): the whole model
0.81x of unfolded at batch 1, while 1.16x at batch 8 and 32. With the shift kept apart: 1.07-1.08x at every batch
size with oneDNN on, 1.05-1.08x with it off (docs/client-and-bench.md#batch-normalization-folded-at-export).
On AVX-512 (AMD EPYC Zen 5) the post-op costs nothing and the complete fold is 1-11% faster than keeping the shift
apart with oneDNN on: `complete=True` (model.yaml fold_batch_norms: complete), for targets on such nodes only.
"""
from __future__ import annotations

import copy

import keras
import numpy as np

_LINEAR = {None, "linear"}
_FOLDABLE = {"Conv2D", "DepthwiseConv2D", "Dense"}
_CONTAINERS = {"Functional", "Model", "Sequential"}


def fold_batch_norms(model: keras.Model, complete: bool = False) -> tuple[keras.Model, int]:
    """(a new model with every foldable BatchNormalization folded, how many were folded). With none to fold,
    or a model whose config cannot be rebuilt, the model itself and 0. `complete` folds the shift of a
    normalization before a residual Add into the convolution too (model.yaml fold_batch_norms: complete)."""
    try:
        config = copy.deepcopy(model.get_config())
    except NotImplementedError:  # a subclassed model: no config to rewrite
        return model, 0
    if "layers" not in config:
        return model, 0
    pairs: dict[str, tuple[str, bool]] = {}  # "path/bn" -> ("path/producer", shift kept apart), nested too
    _plan(config, model, "", pairs, complete)
    if not pairs:
        return model, 0
    kind = keras.Sequential if isinstance(model, keras.Sequential) else keras.Model
    try:
        folded = kind.from_config(config)
    except Exception:  # a custom layer needing custom_objects: serve the model as it is, unfolded
        return model, 0
    _copy_weights(model, folded, "", pairs)
    return folded, len(pairs)


def _plan(config: dict, model: keras.Model, prefix: str, pairs: dict[str, tuple[str, bool]],
          complete: bool = False) -> None:
    """Rewrite `config` (of `model`) in place: the producer gets a bias, the normalization becomes an Identity
    (or, before a residual Add, a Rescaling adding its shift); record the pairs."""
    layers = config["layers"]
    for layer in layers:
        if layer["class_name"] in _CONTAINERS and "layers" in layer["config"]:
            _plan(layer["config"], model.get_layer(_name(layer)), f"{prefix}{_name(layer)}/", pairs, complete)
    by_name = {_name(layer): layer for layer in layers}
    if isinstance(model, keras.Sequential):
        candidates = [(prev, layer, False) for prev, layer in zip(layers, layers[1:])]
    else:
        consumers = _consumers(config)
        candidates = []
        for layer in layers:
            source = _single_source(layer)
            if source is not None and len(consumers.get(source, [])) == 1 and source in by_name:
                residual = not complete and any(by_name[c]["class_name"] == "Add"
                                                for c in consumers.get(_name(layer), []) if c in by_name)
                candidates.append((by_name[source], layer, residual))
    for producer, norm, residual in candidates:
        if not _foldable(producer, norm):
            continue
        name = _name(norm)
        producer["config"]["use_bias"] = True
        keep = {"name": name, "trainable": norm["config"].get("trainable", True), "dtype": norm["config"].get("dtype")}
        if residual:
            beta = _beta(model.get_layer(name))
            norm["class_name"], norm["config"] = "Rescaling", {**keep, "scale": 1.0, "offset": beta}
        else:
            norm["class_name"], norm["config"] = "Identity", keep
        norm["module"], norm["registered_name"] = "keras.layers", None
        norm.pop("build_config", None)
        for node in norm.get("inbound_nodes", []):
            node["kwargs"] = {}
        pairs[prefix + name] = (prefix + _name(producer), residual)


def _beta(norm) -> list[float]:
    """The shift a normalization adds, per channel, as the plain floats a layer config holds."""
    if not norm.center:
        return [0.0] * int(norm.moving_mean.shape[0])
    return [float(v) for v in np.asarray(norm.beta.numpy(), np.float64)]


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


def _consumers(config: dict) -> dict[str, list[str]]:
    """Who uses each layer's output, once per use: other layers' calls, and "" for a model output."""
    users: dict[str, list[str]] = {}
    for layer in config["layers"]:
        for node in layer.get("inbound_nodes", []):
            for history in _tensors(node):
                users.setdefault(history[0], []).append(_name(layer))
    outputs = config.get("output_layers", [])
    outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
    for name, *_ in outputs:
        users.setdefault(name, []).append("")
    return users


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


def _copy_weights(old: keras.Model, new: keras.Model, prefix: str, pairs: dict[str, tuple[str, bool]]) -> None:
    norms_of = {producer: (norm, apart) for norm, (producer, apart) in pairs.items()}
    for layer in old.layers:
        path = prefix + layer.name
        target = new.get_layer(layer.name)
        if path in pairs:
            continue  # now an Identity or a Rescaling: its statistics live in the producer
        if isinstance(layer, keras.Model):
            _copy_weights(layer, target, path + "/", pairs)
        elif path in norms_of:
            norm, apart = norms_of[path]
            target.set_weights(_folded(layer, old.get_layer(norm.rsplit("/", 1)[-1]), shift=not apart))
        else:
            target.set_weights(layer.get_weights())


def _folded(producer, norm, shift: bool = True) -> list[np.ndarray]:
    """[kernel, bias] of `producer` with `norm` folded in (its shift too unless `shift` is False), in float64."""
    kernel = np.asarray(producer.kernel.numpy(), np.float64)
    bias = np.asarray(producer.bias.numpy(), np.float64) if producer.use_bias else 0.0
    mean = np.asarray(norm.moving_mean.numpy(), np.float64)
    var = np.asarray(norm.moving_variance.numpy(), np.float64)
    gamma = np.asarray(norm.gamma.numpy(), np.float64) if norm.scale else 1.0
    beta = np.asarray(norm.beta.numpy(), np.float64) if norm.center and shift else 0.0
    scale = gamma / np.sqrt(var + norm.epsilon)
    if type(producer).__name__ == "DepthwiseConv2D":  # kernel [kh, kw, in, multiplier]; output channel in*m + j
        kernel = kernel * np.reshape(scale, kernel.shape[2:])
    else:  # Conv2D [kh, kw, in/groups, out], Dense [in, out]
        kernel = kernel * scale
    dtype = producer.kernel.numpy().dtype
    return [kernel.astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]
