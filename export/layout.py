"""Rebuild a channels_last Keras model as channels_first (NCHW) with the same weights.

Keras kernels are stored the same way in both layouts, so only the layer configs change: data_format on
every spatial layer, the channel axis of normalization and concatenation, and the input shape. A layer this
module does not know how to move is an error rather than a silently wrong graph.
"""
from __future__ import annotations

import copy

import keras
import numpy as np

from tools.errors import UserError

# Layers whose result does not depend on where the channel axis is.
_LAYOUT_FREE = {
    "InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Add", "Subtract", "Multiply",
    "Average", "Maximum", "Minimum", "Dropout", "GaussianNoise", "GaussianDropout", "Identity",
    "Dense", "Functional", "Sequential", "Model",
}
# Layers with a `data_format` argument.
_SPATIAL = {
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D",
    "SpatialDropout2D", "Flatten",
}
# Layers with a channel `axis` argument.
_AXIS = {"BatchNormalization", "LayerNormalization", "Concatenate", "GroupNormalization"}


def _move_axis(axis, name: str):
    def one(a):
        if a in (-1, 3):
            return 1
        raise UserError(f"cannot convert layer {name!r} to channels_first: it normalizes over axis {a}, not channels")

    return [one(a) for a in axis] if isinstance(axis, (list, tuple)) else one(axis)


def _channels_first_values(value, name: str):
    """A Rescaling's scale or offset for NCHW: a single value stays; per-channel values ([c], or [1, 1, c] written
    for NHWC) become [c, 1, 1], which broadcast over (n, c, h, w). Keras' own Rescaling reshapes only the scale,
    and only by the global image_data_format, not by the layer's input (keras/src/layers/preprocessing/
    rescaling.py), so it cannot be left to Keras. export/fold.py writes a normalization's shift this way."""
    wrapped = isinstance(value, dict) and value.get("class_name") == "__numpy__"
    values = np.asarray(value["config"]["value"] if wrapped else value)
    if values.size == 1:
        return value
    if values.shape[-1] != values.size:
        raise UserError(f"cannot convert layer {name!r} (Rescaling) to channels_first: its scale or offset has a "
                        "shape other than one value per channel")
    moved = values.reshape(-1, 1, 1).tolist()
    return {**value, "config": {**value["config"], "value": moved}} if wrapped else moved


def _convert_layers(layers: list[dict]) -> None:
    for layer in layers:
        kind, cfg, name = layer["class_name"], layer["config"], layer["config"].get("name", "?")
        layer.pop("build_config", None)
        if kind == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if shape is None or len(shape) != 4:
                raise UserError(f"cannot convert input {name!r} to channels_first: expected a 4-D image input")
            key = "batch_shape" if "batch_shape" in cfg else "batch_input_shape"
            cfg[key] = (shape[0], shape[3], shape[1], shape[2])
        elif kind in _SPATIAL:
            cfg["data_format"] = "channels_first"
        elif kind in _AXIS:
            cfg["axis"] = _move_axis(cfg["axis"], name)
        elif kind == "Rescaling":
            cfg["scale"], cfg["offset"] = _channels_first_values(cfg["scale"], name), _channels_first_values(cfg["offset"], name)
        elif kind in ("Functional", "Model") and "layers" in cfg:
            _convert_layers(cfg["layers"])
        elif kind not in _LAYOUT_FREE:
            raise UserError(
                f"cannot convert layer {name!r} ({kind}) to channels_first; export channels_last only "
                "or replace the layer"
            )


def to_channels_first(model: keras.Model) -> keras.Model:
    """A new model computing the same function on NCHW input, sharing no state with `model`."""
    config = copy.deepcopy(model.get_config())
    if "layers" not in config:
        raise UserError(f"cannot convert model {model.name!r} to channels_first: it is not a Functional or Sequential model")
    _convert_layers(config["layers"])
    if isinstance(model, keras.Sequential):
        converted = keras.Sequential.from_config(config)
    else:
        converted = keras.Model.from_config(config)
    converted.set_weights(model.get_weights())
    return converted
