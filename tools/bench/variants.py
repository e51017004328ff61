"""What the benchmark compares, built in memory from model.yaml the way export/ builds the servable.

- servable:  the export's serving function (encoded bytes -> top-k classes, probabilities, labels);
- fast_decode / full_decode: the same with jpeg_fast_downscale on / off (off: every JPEG decoded at full size);
- bare:      the model alone on already decoded, normalized pixels (float tensor -> probabilities), as the
             servable runs it (batch normalizations folded, export/fold.py);
- bare_as_trained: the same with the model as trained (unfolded): bare against it is what folding gains;
- preprocess: the servable's in-graph decoding and resizing alone (bytes -> model input);
- tutorial:  the servable the original tutorial built: tf.map_fn of decode_jpeg, a plain bilinear resize
             and the model's normalization per image, then the model as trained and top-k (no header checks,
             no antialiasing, no reduced-scale decoding, no folding).
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import tensorflow as tf

from export import layout as layout_mod
from export import postprocess, preprocess
from export.api import build_servable, serving_model
from export.labels import resolve_labels
from export.servable import Servable
from export.source import SourceModel, load_source
from tools import paths
from tools.config import Config


@dataclass
class Variants:
    source: SourceModel
    input_size: tuple[int, int]
    servable: Servable  # as model.yaml configures it
    fast_decode: Servable  # jpeg_fast_downscale on
    full_decode: Servable  # jpeg_fast_downscale off
    bare: tf.types.experimental.ConcreteFunction
    bare_as_trained: tf.types.experimental.ConcreteFunction
    preprocess: tf.types.experimental.ConcreteFunction
    tutorial: tf.types.experimental.ConcreteFunction
    tutorial_preprocess: tf.types.experimental.ConcreteFunction
    _labels_dir: Path

    def close(self) -> None:
        shutil.rmtree(self._labels_dir, ignore_errors=True)


def tutorial_preprocess(input_size: tuple[int, int], normalization: str, layout: str = "channels_last"):
    """The original tutorial's input graph: tf.map_fn of decode_jpeg, cast, plain bilinear resize, normalize.
    (Its notebook resized on the client; the resize is added so it takes the same inputs as the servable.)"""
    def one(data):
        image = tf.cast(tf.io.decode_jpeg(data, channels=3), tf.float32)
        image = tf.image.resize(image, input_size, method="bilinear")
        return _tutorial_normalize(image, normalization)

    def run(images):
        x = tf.map_fn(one, images, fn_output_signature=tf.TensorSpec([*input_size, 3], tf.float32))
        return tf.transpose(x, [0, 3, 1, 2]) if layout == "channels_first" else x

    return run


def _tutorial_normalize(image: tf.Tensor, normalization: str) -> tf.Tensor:
    """The model's normalization written the plain way, kept as every earlier `make bench` measured it (the
    export's own preprocess.normalize reverses the channels of a [-1, 3] view since, which is faster)."""
    if normalization == "caffe":
        return image[..., ::-1] - tf.constant((103.939, 116.779, 123.68), tf.float32)
    return preprocess.normalize(image, normalization)


def tutorial_servable(model, input_size: tuple[int, int], normalization: str, activation: str, k: int,
                      layout: str = "channels_last"):
    """The original tutorial's serving graph, in TF2: its input graph, the model, tf.nn.top_k."""
    pre = tutorial_preprocess(input_size, normalization, layout)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(images):
        x = pre(images)
        probabilities = postprocess.to_probabilities(model(x, training=False), activation)
        values, indices = tf.nn.top_k(probabilities, k=k)
        return {paths.OUTPUT_CLASSES: indices, paths.OUTPUT_PROBABILITIES: values}

    return serve.get_concrete_function()


def bare_function(model, activation: str, shape: list):
    """The bare model as the bench times it: a float pixel batch of `shape` -> full probabilities."""
    return tf.function(lambda x: postprocess.to_probabilities(model(x, training=False), activation),
                       input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()


def build(config: Config, layout: str = "channels_last") -> Variants:
    settings = config.model
    source = load_source(settings)
    labels_dir = Path(tempfile.mkdtemp(prefix="bench-labels-"))
    labels_file = labels_dir / paths.LABELS_FILE
    labels_file.write_text("\n".join(resolve_labels(settings.labels, source.num_classes)) + "\n", encoding="utf-8")
    folded, _ = serving_model(source, settings)
    servable = build_servable(folded, layout, source, settings, labels_file)
    other = build_servable(folded, layout, source,
                           replace(settings, jpeg_fast_downscale=not settings.jpeg_fast_downscale), labels_file)
    fast, full = (servable, other) if settings.jpeg_fast_downscale else (other, servable)
    h, w = source.input_size
    model = servable.model
    activation = source.info["output_activation"]
    shape = [None, 3, h, w] if layout == "channels_first" else [None, h, w, 3]
    as_trained = source.model if layout == "channels_last" else layout_mod.to_channels_first(source.model)

    bare, bare_as_trained = bare_function(model, activation, shape), bare_function(as_trained, activation, shape)
    pre = tf.function(servable.preprocess, input_signature=[tf.TensorSpec([None], tf.string)]).get_concrete_function()
    tutorial = tutorial_servable(as_trained, source.input_size, settings.preprocessing_mode, activation, servable.k, layout)
    tutorial_pre = tf.function(tutorial_preprocess(source.input_size, settings.preprocessing_mode, layout),
                               input_signature=[tf.TensorSpec([None], tf.string)]).get_concrete_function()
    return Variants(source, source.input_size, servable, fast, full, bare, bare_as_trained, pre, tutorial,
                    tutorial_pre, labels_dir)
