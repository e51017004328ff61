"""A user's own trained model, end to end: train a tiny classifier on generated pictures, export it with the
same command a user runs, and check the served graph classifies new JPEGs of another size in both layouts."""
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
    run = subprocess.run(
        [sys.executable, "-m", "export", "--model-file", str(model_file), "--labels", str(labels_file),
         "--name", "stripes", "--version", "3", "--output-dir", str(out), "--top-k", "2"],
        cwd=paths.REPO_ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "channels_first: saving SavedModel" in run.stderr  # progress lines

    test_jpegs, test_labels = dataset(30, (90, 160), seed=99)  # larger than anything seen in training
    answers = {}
    for layout in paths.LAYOUTS:
        served = tf.saved_model.load(str(out / "stripes" / layout / "3")).signatures["serving_default"]
        answer = served(images=tf.constant(test_jpegs))
        answers[layout] = answer["classes"].numpy()[:, 0]
        accuracy = float(np.mean(answers[layout] == test_labels))
        assert accuracy >= 0.9, f"{layout}: {accuracy:.2f}"
        assert [row[0].decode() for row in answer["labels"].numpy()] == [CLASSES[c] for c in answers[layout]]
    assert np.array_equal(answers["channels_last"], answers["channels_first"])
