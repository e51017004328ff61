"""Correctness checks on the validator's own sample images: well-formed answers, batching and repetition
that do not change them, agreement with the source Keras model on the same pixels, and the two layouts
agreeing with each other.

Tolerances are absolute differences of probabilities (float32, in [0, 1]); class order may differ only
where probabilities tie within the same tolerance.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

import numpy as np

from tools import onednn, paths
from tools.validate.report import Report
from tools.validate.samples import Sample

# Identical input and batch shape on the same graph: CPU kernels are deterministic, so nothing may change.
REPEAT_ATOL = 0.0
# A batch changes how oneDNN blocks its matrix products, so sums run in another order (seen: ~4e-6 on ResNet50).
BATCH_ATOL = 2e-5
# Keras (eager, channels_last) vs the saved graph: fused kernels and another summation order (seen: ~1e-6).
PARITY_ATOL = 5e-5
# channels_first vs channels_last graphs: different convolution algorithms (seen: ~1e-6).
LAYOUTS_ATOL = 5e-5
# Sum of the top-k probabilities may exceed 1 by float32 rounding of the softmax.
SUM_EPS = 1e-5


@dataclass
class Answers:
    classes: np.ndarray  # int64 [n, k]
    probabilities: np.ndarray  # float32 [n, k]
    labels: np.ndarray  # bytes [n, k]

    @classmethod
    def of(cls, outputs: dict) -> "Answers":
        return cls(np.asarray(outputs[paths.OUTPUT_CLASSES]), np.asarray(outputs[paths.OUTPUT_PROBABILITIES]),
                   np.asarray(outputs[paths.OUTPUT_LABELS]))

    def row(self, i: int) -> "Answers":
        return Answers(self.classes[i:i + 1], self.probabilities[i:i + 1], self.labels[i:i + 1])

    @classmethod
    def stack(cls, rows: list["Answers"]) -> "Answers":
        return cls(np.concatenate([r.classes for r in rows]), np.concatenate([r.probabilities for r in rows]),
                   np.concatenate([r.labels for r in rows]))


@dataclass
class Comparison:
    max_abs_diff: float
    mismatches: int  # rows whose classes differ beyond ties
    ties: int  # rows whose class order differs only among tied probabilities
    top1_same: int
    rows: int

    def ok(self, atol: float) -> bool:
        return self.mismatches == 0 and self.max_abs_diff <= atol


def compare(a: Answers, b: Answers, atol: float) -> Comparison:
    """Row by row: top-k probabilities within atol, and the same classes except where probabilities tie."""
    if a.probabilities.shape != b.probabilities.shape:
        return Comparison(float("inf"), len(a.classes), 0, 0, len(a.classes))
    diff = float(np.max(np.abs(a.probabilities.astype(np.float64) - b.probabilities), initial=0.0))
    mismatches = ties = top1 = 0
    k = a.classes.shape[1] if a.classes.ndim == 2 else 0
    for i in range(len(a.classes)):
        ca, cb, pa = a.classes[i], b.classes[i], a.probabilities[i].astype(np.float64)
        top1 += int(k > 0 and ca[0] == cb[0])
        if np.array_equal(ca, cb):
            continue
        tied = True
        for j in np.nonzero(ca != cb)[0]:
            neighbours = [pa[j2] for j2 in (j - 1, j + 1) if 0 <= j2 < k]
            at_edge = j == k - 1 and abs(pa[j] - b.probabilities[i, j]) <= atol
            if not (at_edge or any(abs(pa[j] - p) <= 2 * atol for p in neighbours)):
                tied = False
        if tied:
            ties += 1
            top1 += int(ca[0] != cb[0])  # a tie for first place counts as the same top-1
        else:
            mismatches += 1
    return Comparison(diff, mismatches, ties, top1, len(a.classes))


def run_samples(export, samples: list[Sample]) -> Answers:
    return Answers.of(export.predict([s.data for s in samples]))


def read_labels(version_dir) -> list[bytes]:
    text = (version_dir / paths.ASSETS_DIR / paths.LABELS_FILE).read_bytes()
    return [line.strip() for line in text.splitlines()]


def check_outputs(report: Report, layout: str, answers: Answers, labels: list[bytes], num_classes: int,
                  k: int, samples: list[Sample]) -> None:
    n = len(samples)
    p, c = answers.probabilities, answers.classes
    problems = []
    if p.shape != (n, k) or c.shape != (n, k) or answers.labels.shape != (n, k):
        problems.append(f"shapes classes {c.shape}, probabilities {p.shape}, labels {answers.labels.shape}; "
                        f"expected ({n}, {k}) each")
    else:
        if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            problems.append(f"probabilities outside [0, 1]: min {p.min():.3g}, max {p.max():.3g}")
        if np.any(np.diff(p, axis=1) > 0):
            problems.append("probabilities are not sorted in descending order")
        sums = p.astype(np.float64).sum(axis=1)
        if sums.max() > 1 + SUM_EPS:
            problems.append(f"top-{k} probabilities sum to {sums.max():.7f} > 1")
        if c.min() < 0 or c.max() >= num_classes:
            problems.append(f"classes outside [0, {num_classes})")
        elif len(labels) != num_classes:
            problems.append(f"labels.txt has {len(labels)} lines for {num_classes} classes")
        else:
            expected = np.array([[labels[j] for j in row] for row in c], dtype=object)
            wrong = int(np.sum(expected != answers.labels))
            if wrong:
                problems.append(f"{wrong} labels differ from labels.txt[classes]")
        if any(len(set(row.tolist())) != k for row in c):
            problems.append("a class appears twice in one answer")
    top1 = [labels[int(i)].decode("utf-8", "replace") if c.size and int(i) < len(labels) else "?" for i in c[:, 0]] \
        if c.ndim == 2 and c.shape[1] else []
    report.add("correctness.outputs", layout, not problems,
               "; ".join(problems) or f"{n} samples: probabilities in [0, 1], descending, top-{k} sum <= 1, "
                                      "labels = labels.txt[classes]",
               samples=[f"{s.name} {s.width}x{s.height}" for s in samples], top1=top1,
               top1_probability=[round(float(x), 4) for x in (p[:, 0] if p.ndim == 2 and p.shape[1] else [])],
               max_topk_sum=round(float(p.astype(np.float64).sum(axis=1).max()), 6) if p.size else None)


def widened(atol: float, bf16_tolerance: float | None) -> float:
    """The tolerance of a comparison of fp32 answers, or of answers a `math: bf16` target serves: its golden-set
    tolerance (tools/validate/settings.py), when wider."""
    return max(atol, bf16_tolerance or 0.0)


def check_batching(report: Report, layout: str, export, samples: list[Sample], batch: Answers,
                   bf16_tolerance: float | None = None) -> None:
    atol = widened(BATCH_ATOL, bf16_tolerance)
    alone = Answers.stack([run_samples(export, [s]) for s in samples])
    cmp = compare(alone, batch, atol)
    report.add("correctness.batching", layout, cmp.ok(atol),
               f"each sample alone vs inside a batch of {len(samples)}: " + (
                   "same classes, probabilities within tolerance" if cmp.ok(atol) else
                   f"{cmp.mismatches} differ in classes, probabilities differ by up to {cmp.max_abs_diff:.3g}"),
               max_abs_diff=cmp.max_abs_diff, tolerance=atol, class_mismatches=cmp.mismatches, ties=cmp.ties)


def check_repeat(report: Report, layout: str, export, samples: list[Sample], batch: Answers, times: int = 2) -> None:
    worst, mismatches = 0.0, 0
    for _ in range(times):
        cmp = compare(run_samples(export, samples), batch, REPEAT_ATOL)
        worst, mismatches = max(worst, cmp.max_abs_diff), mismatches + cmp.mismatches
    ok = mismatches == 0 and worst <= REPEAT_ATOL
    report.add("correctness.repeat", layout, ok,
               f"{times} more calls on the same batch give " + ("identical answers" if ok else
                                                               f"different answers (up to {worst:.3g})"),
               max_abs_diff=worst, tolerance=REPEAT_ATOL, calls=times)


# ------------------------------------------------------------------------------------------ parity

@dataclass
class Reference:
    """The source Keras model's full probabilities on the samples' decoded pixels."""

    probabilities: np.ndarray  # [n, classes]
    weights_sha256: str
    normalization: str
    seconds: float


def decoded_pixels(samples: list[Sample], info: dict) -> np.ndarray:
    """float32 [n, h, w, 3] 0..255: each sample decoded and resized by the export's own helpers, eagerly."""
    import tensorflow as tf

    from export import preprocess

    size = tuple(info["input_size"])
    out = []
    for s in samples:
        image = preprocess.decode(tf.constant(s.data), size, info["max_image_pixels"],
                                  info.get("jpeg_fast_downscale", True))
        out.append(preprocess.resize(image, size).numpy())
    return np.stack(out)


def normalize_reference(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Keras applications' own preprocess_input, an implementation independent of the export's."""
    if mode == "none":
        return pixels
    from keras.applications import imagenet_utils

    return imagenet_utils.preprocess_input(pixels.copy(), data_format="channels_last", mode=mode)


_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keras_outputs(model, x: np.ndarray) -> np.ndarray:
    """The Keras model's outputs for x: eagerly, unless this process runs with TF_ONEDNN_ASSUME_FROZEN_WEIGHTS (a
    `frozen_weights` target's layout is validated in a child that has it, as its server does). There eager
    convolutions share kernels, each keeping the first filter it was given, and answer wrong
    (docs/client-and-bench.md#considered-and-rejected-frozen-weights); a traced function gives every convolution a
    kernel of its own, which only ever sees its own filter."""
    if onednn.in_force().get(onednn.ASSUME_FROZEN_ENV) != "1":
        return np.asarray(model(x, training=False))
    import tensorflow as tf

    fn = _TRACED.get(model)
    if fn is None:
        fn = _TRACED[model] = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
    return np.asarray(fn(tf.constant(x)))


def keras_reference(source, samples: list[Sample], info: dict) -> Reference:
    start = time.monotonic()
    x = normalize_reference(decoded_pixels(samples, info), info["preprocessing"])
    probs = np.asarray(keras_outputs(source.model, x), dtype=np.float64)
    if source.info.get("output_activation") == "linear":
        z = probs - probs.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return Reference(probs.astype(np.float32), source.info["weights_sha256"], info["preprocessing"],
                     time.monotonic() - start)


def reference_answers(ref: Reference, k: int, labels: list[bytes]) -> Answers:
    classes = np.argsort(-ref.probabilities, axis=1, kind="stable")[:, :k]
    probs = np.take_along_axis(ref.probabilities, classes, axis=1)
    names = np.array([[labels[j] if j < len(labels) else b"" for j in row] for row in classes], dtype=object)
    return Answers(classes.astype(np.int64), probs, names)


def check_parity(report: Report, layout: str, answers: Answers, ref: Reference, info: dict, labels: list[bytes],
                 where: str = "the source", bf16_tolerance: float | None = None) -> None:
    """The servable against the source Keras model its export_info names (`where` says which file was used)."""
    atol = widened(PARITY_ATOL, bf16_tolerance)
    problems = []
    exported = (info.get("source") or {}).get("weights_sha256")
    if exported != ref.weights_sha256:
        problems.append(f"weights differ: the export records weights sha256 {str(exported)[:12]}, its source "
                        f"{where} holds {ref.weights_sha256[:12]}")
    k = answers.classes.shape[1]
    cmp = compare(answers, reference_answers(ref, k, labels), atol)
    # The servable's probabilities against Keras' at the same classes, whatever their order.
    gathered = np.take_along_axis(ref.probabilities, np.clip(answers.classes, 0, ref.probabilities.shape[1] - 1), 1)
    gathered_diff = float(np.max(np.abs(gathered.astype(np.float64) - answers.probabilities), initial=0.0))
    if not cmp.ok(atol) or gathered_diff > atol:
        problems.append(f"servable vs Keras: {cmp.mismatches} samples differ in classes, probabilities differ by up "
                        f"to {max(cmp.max_abs_diff, gathered_diff):.3g} (tolerance {atol:g}"
                        + ("; the target serves bf16 math: if these answers are acceptable, set its golden_tolerance"
                           ".probability in model.yaml above that difference" if bf16_tolerance is not None else "")
                        + ")")
    report.add("correctness.parity", layout, not problems,
               "; ".join(problems) or f"same weights as its source ({where}); probabilities equal Keras' on the "
                                      f"same decoded pixels ({ref.normalization} normalization by keras "
                                      f"preprocess_input, as the export records) within {atol:g}"
                                      + (" (bf16 math: the target's golden-set tolerance)"
                                         if atol > PARITY_ATOL else ""),
               max_abs_diff=max(cmp.max_abs_diff, gathered_diff), tolerance=atol, top1_same=cmp.top1_same,
               samples=cmp.rows, weights_sha256=ref.weights_sha256[:16], reference=where)
