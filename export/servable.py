"""The servable: a tf.Module whose signature takes encoded image bytes and answers with top-k classes,
probabilities and labels. Saved with tf.saved_model.save, the modern form of the tutorial's SavedModelBuilder."""
from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import tensorflow as tf

from export import postprocess, preprocess
from export.canonical import canonicalize_saved_model
from tools import paths


class _Untracked:
    """Holds an object where tf.Module's automatic tracking does not look (it tracks attributes' values)."""

    def __init__(self, obj):
        self.obj = obj


class Servable(tf.Module):
    def __init__(
        self,
        model: keras.Model,
        *,
        layout: str,
        input_size: tuple[int, int],
        normalization: str,
        output_activation: str,
        top_k: int,
        labels_file: Path,
        max_image_pixels: int,
        jpeg_fast_downscale: bool,
        exif_orientation: bool = True,
        max_request_pixels: int | None = None,
        max_request_bytes: int | None = None,
    ):
        super().__init__(name="servable")
        if layout not in paths.LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        # The backing tf.Variables themselves must be tracked, and the Keras model must not be: Keras 3 saves its
        # own variable wrappers, and a signature then reads variables that TF Serving's C++ loader
        # (LoadSavedModel: restore, then Session::Run) never restores: "FAILED_PRECONDITION: Could not find
        # variable dense/bias" (keras-team/keras#20095, tensorflow/serving#2226, #2250). Python's
        # tf.saved_model.load hides it; tools/validate/capi.py loads every export the way TF Serving does.
        # Keras' own ExportArchive tracks `variable.value` for the same reason (keras/src/backend/tensorflow/
        # export.py). Tracking both would store every weight twice. Keyed by the variable's path, so the
        # checkpoint's keys name the layers.
        self._keras = _Untracked(model)
        self.model_variables = {v.path: v.value for v in model.variables}
        self.layout = layout
        self.input_size = tuple(input_size)
        self.normalization = normalization
        self.output_activation = output_activation
        self.k = top_k
        self.max_image_pixels = max_image_pixels
        self.jpeg_fast_downscale = jpeg_fast_downscale
        self.exif_orientation = exif_orientation
        # None: no bound of that kind (tools/config.py gives every export from model.yaml both).
        self.max_request_pixels = max_request_pixels
        self.max_request_bytes = max_request_bytes
        # An Asset is copied into the SavedModel's assets/ and its path rewritten on load.
        self.labels_asset = tf.saved_model.Asset(str(labels_file))
        self.labels = postprocess.labels_table(self.labels_asset, hashlib.sha256(Path(labels_file).read_bytes()).hexdigest())
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None], tf.string, name=paths.INPUT_KEY)],
        )

    @property
    def model(self) -> keras.Model:
        return self._keras.obj

    def preprocess(self, images: tf.Tensor) -> tf.Tensor:
        """Encoded bytes [n] -> the model's input batch, in this servable's layout."""
        pixels = preprocess.decode_batch(images, self.input_size, self.max_image_pixels, self.jpeg_fast_downscale,
                                         self.exif_orientation, self.max_request_pixels, self.max_request_bytes)
        return self.from_pixels(pixels)

    def from_pixels(self, pixels: tf.Tensor) -> tf.Tensor:
        """float32 RGB 0..255 [n, h, w, 3] -> normalized model input in this servable's layout."""
        x = preprocess.normalize(pixels, self.normalization)
        return tf.transpose(x, [0, 3, 1, 2]) if self.layout == "channels_first" else x

    def predict_pixels(self, pixels: tf.Tensor) -> tf.Tensor:
        """Full probabilities for already decoded pixels (what the validator compares with Keras)."""
        return postprocess.to_probabilities(self.model(self.from_pixels(pixels), training=False), self.output_activation)

    def _serve(self, images):
        def predict():
            probabilities = postprocess.to_probabilities(
                self.model(self.preprocess(images), training=False), self.output_activation
            )
            return postprocess.top_k(probabilities, self.k)

        def nothing():
            # Some fused kernels refuse a zero-sized batch; an empty request gets an empty answer instead.
            return tf.zeros([0, self.k], tf.int64), tf.zeros([0, self.k], tf.float32)

        classes, top = tf.cond(tf.size(images) > 0, predict, nothing)
        return {
            paths.OUTPUT_CLASSES: classes,
            paths.OUTPUT_PROBABILITIES: top,
            paths.OUTPUT_LABELS: self.labels.lookup(classes),
        }

    def save(self, directory: Path) -> None:
        signature = self.serve.get_concrete_function()
        tf.saved_model.save(
            self,
            str(directory),
            signatures={paths.SERVING_SIGNATURE: signature, paths.PREDICT_ALIAS: signature},
        )
        canonicalize_saved_model(Path(directory))
        _rewrite_fingerprint(Path(directory))


def _rewrite_fingerprint(directory: Path) -> None:
    """fingerprint.pb again, of the canonical saved_model.pb, by TensorFlow's own fingerprinting (what
    tf.saved_model.save calls: tensorflow/python/saved_model/fingerprinting_utils.py write_fingerprint); its
    random uuid replaced by one derived from the content hashes beside it, so exporting the same model twice gives
    the same bytes and the same digest."""
    path = directory / "fingerprint.pb"
    if not path.is_file():
        return
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString(fingerprinting.CreateFingerprintDef(str(directory)))
    fingerprint.uuid = ""  # always rewritten: the file TensorFlow wrote describes the saved_model.pb before renaming
    content = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(int.from_bytes(content[:16], "big"))
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))
