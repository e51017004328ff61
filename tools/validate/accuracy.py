"""Top-1 accuracy of the served graph on the user's labelled sample images (`model.samples_dir`: one subfolder
per class, named as in the labels file, images inside), beside the Keras model's own accuracy on the same
decoded pixels.

The parity check compares the servable with Keras under the *stated* preprocessing, so a wrong statement passes
it (both sides are wrong the same way). This check does not take the statement's word: it measures the Keras
model under every preprocessing mode and fails when the served accuracy falls short of the best of them (a
preprocessing mismatch: a model trained on caffe input served with `none` swaps red and blue), or is no better
than chance (a labels file in another order than the model's classes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tools.config import PREPROCESSING_MODES, Config
from tools.errors import UserError
from tools.validate import correctness
from tools.validate.report import Report
from tools.validate.samples import Sample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
MODES = tuple(m for m in PREPROCESSING_MODES if m != "auto")
BATCH = 32
_KERAS: dict[tuple, dict[str, float]] = {}  # the Keras accuracies per source and samples, shared by both layouts


def read_samples(samples_dir: Path, labels: list[str]) -> tuple[list[Sample], np.ndarray]:
    """The images and their class indices; a folder that names no class, or no image at all, is an error."""
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        raise UserError(f"model.samples_dir: {samples_dir} is not a folder")
    folders = sorted(p for p in samples_dir.iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in labels]
    if unknown:
        raise UserError(f"model.samples_dir: {', '.join(unknown[:3])} {'is' if len(unknown) == 1 else 'are'} not "
                        "a class in the labels file (one subfolder per class, named as in the labels file)")
    samples, classes = [], []
    for folder in folders:
        for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            samples.append(Sample(f"{folder.name}/{image.name}", image.read_bytes(), 0, 0, image.suffix.lower()[1:]))
            classes.append(labels.index(folder.name))
    if not samples:
        raise UserError(f"model.samples_dir: {samples_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}) "
                        "in class subfolders")
    return samples, np.asarray(classes)


def _declared_pixels(data: bytes) -> int:
    """width x height as the header says, read as the served graph reads it; 0 for an unsupported image."""
    import tensorflow as tf

    from export.preprocess import declared_shape

    try:
        h, w = (int(v) for v in declared_shape(tf.constant(data)).numpy())
    except tf.errors.InvalidArgumentError:  # the served answer names what is wrong with it
        return 0
    return h * w


def request_chunks(samples: list[Sample], info: dict, batch: int = BATCH) -> list[list[Sample]]:
    """The samples in consecutive requests of at most `batch` images that also stay within the export's request
    bounds (export_info's max_request_pixels / max_request_bytes, issue 13): 32 phone photos of 12 MP would
    otherwise be refused as one request. An image over a bound on its own goes alone (and is refused by name)."""
    max_pixels, max_bytes = info.get("max_request_pixels"), info.get("max_request_bytes")
    chunks, current, pixels, size = [], [], 0, 0
    for s in samples:
        p, b = (_declared_pixels(s.data) if max_pixels else 0), len(s.data)
        if current and (len(current) == batch or (max_pixels and pixels + p > max_pixels)
                        or (max_bytes and size + b > max_bytes)):
            chunks.append(current)
            current, pixels, size = [], 0, 0
        current.append(s)
        pixels, size = pixels + p, size + b
    return chunks + ([current] if current else [])


def keras_accuracies(source, samples: list[Sample], classes: np.ndarray, info: dict) -> dict[str, float]:
    """Top-1 accuracy of the source Keras model on the decoded samples, under each preprocessing mode."""
    pixels = correctness.decoded_pixels(samples, info)
    out = {}
    for mode in MODES:
        x = correctness.normalize_reference(pixels, mode)
        top1 = np.concatenate([np.argmax(correctness.keras_outputs(source.model, x[i:i + BATCH]), axis=1)
                               for i in range(0, len(x), BATCH)])
        out[mode] = float(np.mean(top1 == classes))
    return out


def check_accuracy(report: Report, layout: str, export, info: dict, config: Config, source: Callable) -> None:
    """One `accuracy.samples` line per layout; nothing when model.samples_dir is not set. `source()` gives the
    source Keras model (export.source.SourceModel)."""
    samples_dir = config.model.samples_dir
    if samples_dir is None:
        return
    labels = [line.decode() for line in correctness.read_labels(export.path)]
    samples, classes = read_samples(samples_dir, labels)
    served = np.concatenate([np.asarray(export.predict([s.data for s in chunk])["classes"])[:, 0]
                             for chunk in request_chunks(samples, info)])
    served_acc = float(np.mean(served == classes))
    model = source()
    key = (id(model.model), str(samples_dir), tuple(info["input_size"]), info["max_image_pixels"],
           info.get("jpeg_fast_downscale", True))
    if key not in _KERAS:
        _KERAS[key] = keras_accuracies(model, samples, classes, info)
    keras_acc = _KERAS[key]
    stated = info["preprocessing"]
    best_mode = max(MODES, key=lambda m: (keras_acc[m], m == stated))
    best = keras_acc[best_mode]
    n, present = len(samples), len(set(classes.tolist()))
    # One image's worth of slack (at least 2 points): the served graph's float32 kernels may flip a borderline image.
    margin = max(0.02, 1.0 / n)
    chance = 1.0 / present
    figures = dict(served_top1=round(served_acc, 4), keras_top1_stated=round(keras_acc[stated], 4),
                   keras_top1_best=round(best, 4), best_preprocessing=best_mode, stated_preprocessing=stated,
                   images=n, classes=present, margin=round(margin, 4))
    if served_acc < best - margin:
        report.add("accuracy.samples", layout, False,
                   f"served top-1 accuracy {served_acc:.3f} on {n} labelled images falls {best - served_acc:.3f} "
                   f"short of the Keras model's {best:.3f} with preprocessing {best_mode} (stated: {stated}, where "
                   f"Keras gets {keras_acc[stated]:.3f}): state preprocessing {best_mode}", **figures)
    elif present > 1 and served_acc <= chance + margin:
        report.add("accuracy.samples", layout, False,
                   f"served top-1 accuracy {served_acc:.3f} on {n} labelled images is no better than chance "
                   f"({chance:.3f}) under every preprocessing: is the labels file in the order of the model's "
                   "classes?", **figures)
    else:
        report.add("accuracy.samples", layout, True,
                   f"served top-1 accuracy {served_acc:.3f} on {n} labelled images in {present} classes; the Keras "
                   f"model gets {keras_acc[stated]:.3f} with the stated preprocessing ({stated}), at best "
                   f"{best:.3f} ({best_mode})", **figures)
