"""A user's own trained model, end to end: train a tiny classifier on generated pictures, export it with the
same command a user runs, check the served graph classifies new JPEGs of another size in both layouts, and
validate it with the documented command alone (model.yaml untouched)."""
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import preprocess
from tests.export import images
from tools import paths

CLASSES = ["horizontal stripes", "vertical stripes", "checkerboard"]
INPUT = (32, 32)


def pattern(kind: int, height: int, width: int, rng) -> np.ndarray:
    period = max(2, int(min(height, width) / rng.uniform(4, 7)))
    y, x = np.mgrid[0:height, 0:width]
    h, v = (y // period) % 2, (x // period) % 2
    mask = [h, v, h ^ v][kind].astype(bool)
    fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg).sum() < 200:
        fg = rng.integers(0, 256, 3)
    return np.where(mask[..., None], fg, bg).astype(np.uint8)


def dataset(n: int, sizes: tuple[int, int], seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    jpegs = [images.encode(pattern(k, int(rng.integers(*sizes)), int(rng.integers(*sizes)), rng), "JPEG", quality=90)
             for k in labels]
    return jpegs, labels


@pytest.mark.slow
def test_trained_model_exported_by_the_cli_classifies_new_images_in_both_layouts(tmp_path):
    keras.utils.set_random_seed(3)
    train_jpegs, train_labels = dataset(360, (40, 70), seed=1)
    # Train on exactly what the server will feed the model: the servable's own decode and resize.
    x = preprocess.decode_batch(tf.constant(train_jpegs), INPUT, 10_000_000).numpy()
    inputs = keras.Input((*INPUT, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(CLASSES), activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, train_labels, epochs=25, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.95

    model_file, labels_file, out = tmp_path / "stripes.keras", tmp_path / "classes.txt", tmp_path / "models"
    model.save(model_file)
    labels_file.write_text("\n".join(CLASSES) + "\n")
    # The README's own-model commands; --output-dir and --models-dir/--reports-dir only keep the test's files
    # out of the repository's build/.
    run = subprocess.run(
        [sys.executable, "-m", "export", "--model-file", str(model_file), "--labels", str(labels_file),
         "--version", "3", "--output-dir", str(out)],
        cwd=paths.REPO_ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "channels_first: saving SavedModel" in run.stderr  # progress lines
    name = json.loads((next(out.glob(f"*/channels_last/3")) / paths.ASSETS_EXTRA_DIR /
                       paths.EXPORT_INFO_FILE).read_text())["model_name"]

    test_jpegs, test_labels = dataset(30, (90, 160), seed=99)  # larger than anything seen in training
    answers = {}
    for layout in paths.LAYOUTS:
        served = tf.saved_model.load(str(out / name / layout / "3")).signatures["serving_default"]
        answer = served(images=tf.constant(test_jpegs))
        answers[layout] = answer["classes"].numpy()[:, 0]
        accuracy = float(np.mean(answers[layout] == test_labels))
        assert accuracy >= 0.9, f"{layout}: {accuracy:.2f}"
        assert [row[0].decode() for row in answer["labels"].numpy()] == [CLASSES[c] for c in answers[layout]]
    assert np.array_equal(answers["channels_last"], answers["channels_first"])

    # `make validate VERSION=3` is `python -m tools validate --version 3`: no model.yaml edit, no --source.
    reports = tmp_path / "reports"
    run = subprocess.run([sys.executable, "-m", "tools", "validate", "--version", "3", "--models-dir", str(out),
                          "--reports-dir", str(reports)], cwd=paths.REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads(paths.validation_report(reports, name, 3, "json").read_text())
    assert report["passed"] is True and report["not_run"] == []
    parity = [c for c in report["checks"] if c["name"] == "correctness.parity"]
    assert len(parity) == 2 and all(c["status"] == "passed" for c in parity)
    assert all(c["figures"]["reference"].startswith("model file ") and "sources/sha256-" in c["figures"]["reference"]
               for c in parity)
    assert "made from model file stripes.keras; model.yaml names ResNet50 instead" in run.stdout
