"""The Keras model an export starts from: an applications ResNet (seeded or from a weights file), or a
user's own trained model file. Also the facts about it that the export records."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from tools import paths
from tools.config import ModelSettings
from tools.digests import sha256_file
from tools.errors import UserError

_ARCHITECTURES = {
    "ResNet50": keras.applications.ResNet50,
    "ResNet101": keras.applications.ResNet101,
    "ResNet152": keras.applications.ResNet152,
    "ResNet50V2": keras.applications.ResNet50V2,
    "ResNet101V2": keras.applications.ResNet101V2,
    "ResNet152V2": keras.applications.ResNet152V2,
}


@dataclass
class SourceModel:
    model: keras.Model
    input_size: tuple[int, int]
    num_classes: int
    info: dict = field(default_factory=dict)


def weights_sha256(model: keras.Model) -> str:
    """A fingerprint of the weights themselves (shapes and bytes), equal for both layouts of one export."""
    h = hashlib.sha256()
    for w in model.get_weights():
        arr = np.ascontiguousarray(w)
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _build_architecture(settings: ModelSettings, weights_file: Path | None = None) -> keras.Model:
    src = settings.source
    weights_file = weights_file or src.weights
    if src.weights is None:
        # Keras draws every initializer from the global seed: the same seed gives the same weights.
        keras.utils.set_random_seed(src.seed)
    keras.config.set_image_data_format("channels_last")
    model = _ARCHITECTURES[src.architecture](weights=None, classes=src.classes, classifier_activation="softmax")
    if src.weights is not None:
        if not weights_file.is_file():
            raise UserError(f"model.source.weights: {src.weights} does not exist")
        try:
            model.load_weights(str(weights_file))
        except Exception as exc:  # Keras raises many types for a wrong file
            raise UserError(
                f"model.source.weights: {src.weights.name} does not fit {src.architecture} "
                f"with {src.classes} classes: {str(exc).splitlines()[0][:200]}"
            ) from None
    return model


def _load_model_file(path: Path) -> keras.Model:
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"model file {path.name} is not a loadable Keras model: {first}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"model file {path.name} holds a {type(model).__name__}, not a Keras model")
    return model


def _check_shapes(model: keras.Model, where: str) -> tuple[tuple[int, int], int]:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"{where}: the model must have one image input and one output, "
                        f"has {len(model.inputs)} and {len(model.outputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3:
        raise UserError(f"{where}: the model input must be (batch, height, width, 3) channels_last images, got {shape}")
    if shape[1] is None or shape[2] is None:
        raise UserError(f"{where}: the model input size must be fixed, got {shape}")
    out = tuple(model.outputs[0].shape)
    if len(out) != 2 or out[1] is None or out[1] < 2:
        raise UserError(f"{where}: the model output must be (batch, classes) with at least 2 classes, got {out}")
    return (int(shape[1]), int(shape[2])), int(out[1])


def output_activation(model: keras.Model) -> str:
    """`softmax` when the model already outputs probabilities, `linear` for logits; anything else refused."""
    last = model.layers[-1]
    if type(last).__name__ == "Softmax":
        return "softmax"
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", None) if act is not None else "linear"
    if name in ("softmax", "linear"):
        return name
    raise UserError(f"the model's output activation is {name!r}; a classifier must end in softmax or logits (linear)")


# Layers that normalize pixels inside the model itself: with one of them, the model needs no preprocessing.
_NORMALIZATION_LAYERS = ("Rescaling", "Normalization")


def normalization_layers(model: keras.Model) -> list[str]:
    """Names of the model's own pixel-normalization layers (nested models included), in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += normalization_layers(layer)
        elif type(layer).__name__ in _NORMALIZATION_LAYERS:
            found.append(f"{layer.name} ({type(layer).__name__})")
    return found


def _check_preprocessing(settings: ModelSettings, model: keras.Model, where: str) -> list[str]:
    """A model file's preprocessing is never guessed: `auto` only when the model normalizes by itself."""
    own = normalization_layers(model)
    if settings.preprocessing == "auto" and not own:
        raise UserError(
            f"model.preprocessing is auto, but {where} has no normalization layer of its own (Rescaling or "
            "Normalization): state what it was trained on with model.preprocessing or --preprocessing: "
            "caffe, tf, torch or none"
        )
    return own


def _cached_copy(settings: ModelSettings) -> Path | None:
    """The verified copy in build/sources of a pinned source file that is not where model.yaml points (CI
    fetched it from the store: `make export` / `make verify-digests`), so validation can load it too."""
    src = settings.source
    path = src.model_file or src.weights
    if path is None or path.is_file() or not src.sha256:
        return None
    cached = paths.source_cache_file(paths.REPO_ROOT, src.sha256, path.suffix)
    return cached if cached.is_file() and sha256_file(cached) == src.sha256 else None


def load_source(settings: ModelSettings, source_file: Path | None = None) -> SourceModel:
    """The source model. `source_file` is where to read the model or weights file from when it is not where
    model.yaml points (a cached or fetched copy of the same bytes); what is recorded keeps model.yaml's name."""
    src = settings.source
    source_file = source_file or _cached_copy(settings)
    if src.model_file is not None:
        read = source_file or src.model_file
        if not read.is_file():
            raise UserError(f"model file {src.model_file} does not exist")
        model = _load_model_file(read)
        where = f"model file {src.model_file.name}"
        info = {"kind": "model_file", "file": src.model_file.name, "file_sha256": sha256_file(read)}
        info["normalization_layers"] = _check_preprocessing(settings, model, where)
    else:
        model = _build_architecture(settings, source_file)
        where = f"{src.architecture}"
        info = {"kind": "architecture", "architecture": src.architecture, "classes": src.classes}
        if src.weights is not None:
            info.update(weights_file=src.weights.name, weights_file_sha256=sha256_file(source_file or src.weights))
        else:
            info.update(seed=src.seed, weights="seeded (deterministic, not trained)")
    size, classes = _check_shapes(model, where)
    info["weights_sha256"] = weights_sha256(model)
    info["output_activation"] = output_activation(model)
    return SourceModel(model=model, input_size=size, num_classes=classes, info=info)
