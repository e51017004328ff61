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


@pytest.mark.slow(seconds=120)
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
         "--name", "stripes", "--version", "3", "--output-dir", str(out), "--preprocessing", "none"],
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

    # `make validate VERSION=3 ARGS="--name stripes"`: no model.yaml edit, no --source.
    reports = tmp_path / "reports"
    run = subprocess.run([sys.executable, "-m", "tools", "validate", "--version", "3", "--name", "stripes",
                          "--models-dir", str(out), "--reports-dir", str(reports)],
                         cwd=paths.REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads(paths.validation_report(reports, name, 3, "json").read_text())
    assert report["passed"] is True and report["not_run"] == []
    parity = [c for c in report["checks"] if c["name"] == "correctness.parity"]
    assert len(parity) == 2 and all(c["status"] == "passed" for c in parity)
    assert all(c["figures"]["reference"].startswith("model file ") and "sources/sha256-" in c["figures"]["reference"]
               for c in parity)
    assert "made from model file stripes.keras; model.yaml names ResNet50 instead" in run.stdout

# --- Issue 10: a model file's preprocessing is never guessed, and labelled samples catch a wrong statement. ---
COLORS = ["red", "green", "blue"]


def color_images(n: int, seed: int) -> tuple[list[bytes], np.ndarray]:
    """JPEGs whose class is their dominant colour: a model trained on caffe input (BGR) tells red from blue by
    channel order, so serving it with the wrong normalization swaps those two classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(COLORS)
    jpegs = []
    for k in labels:
        h, w = int(rng.integers(24, 60)), int(rng.integers(24, 60))
        pixels = rng.integers(0, 90, (h, w, 3))
        pixels[..., k] += int(rng.integers(140, 166))
        jpegs.append(images.encode(pixels.astype(np.uint8), "JPEG", quality=92))
    return jpegs, labels


@pytest.fixture(scope="module")
def caffe_model(tmp_path_factory):
    """A tiny classifier trained on caffe-normalized input, without normalization layers of its own."""
    from keras.applications import imagenet_utils

    keras.utils.set_random_seed(5)
    jpegs, labels = color_images(150, seed=1)
    x = preprocess.decode_batch(tf.constant(jpegs), INPUT, 10_000_000).numpy()
    x = imagenet_utils.preprocess_input(x, data_format="channels_last", mode="caffe")
    inputs = keras.Input((*INPUT, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(COLORS), activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=15, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    root = tmp_path_factory.mktemp("caffe")
    model.save(root / "colors.keras")
    (root / "colors.txt").write_text("\n".join(COLORS) + "\n")
    samples = root / "samples"
    test_jpegs, test_labels = color_images(24, seed=7)
    for i, (data, k) in enumerate(zip(test_jpegs, test_labels)):
        (samples / COLORS[k]).mkdir(parents=True, exist_ok=True)
        (samples / COLORS[k] / f"{i}.jpg").write_bytes(data)
    return root


def test_a_model_file_without_stated_preprocessing_is_refused(caffe_model, tmp_path, capsys):
    from export.cli import main

    code = main(["--model-file", str(caffe_model / "colors.keras"), "--labels", str(caffe_model / "colors.txt"),
                 "--name", "colors", "--output-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("error: model.preprocessing is auto, but model file colors.keras has no normalization layer of "
                   "its own (Rescaling or Normalization): state what it was trained on with model.preprocessing "
                   "or --preprocessing: caffe, tf, torch or none")
    assert not (tmp_path / "out").exists()


def test_a_model_file_with_its_own_rescaling_may_say_auto_and_the_export_records_it(tmp_path):
    from export.source import load_source
    from tests.conftest import tiny_config_data, tiny_resnet
    from tools.config import parse_config

    tiny_resnet().save(tmp_path / "tiny.keras")
    data = tiny_config_data(tmp_path / "tiny.keras", "unused")
    data["model"]["preprocessing"] = "auto"
    source = load_source(parse_config(data).model)
    assert [name.split(" ")[1] for name in source.info["normalization_layers"]] == ["(Rescaling)"]


def test_an_own_model_export_without_a_name_is_refused(tmp_path, capsys):
    from export.cli import main

    code = main(["--model-file", str(tmp_path / "mine.keras"), "--output-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--model-file mine.keras: name the export with --name NAME (model.yaml's model.name" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow(seconds=25)
@pytest.mark.parametrize("stated, passes", [("none", False), ("caffe", True)])
def test_labelled_samples_catch_the_wrong_preprocessing(caffe_model, tmp_path, stated, passes):
    """The accuracy.samples check on its own (tools/validate/accuracy.py), given what validation gives it: the export
    loaded as TF Serving loads it, its export_info, and the source model its record names. A whole `tools validate`
    running it on a model with samples_dir: tests/gitops/test_own_model.py."""
    from export.api import export_model
    from tests.conftest import tiny_config_data
    from tools.config import parse_config
    from tools.validate import accuracy, reference, serving, structure
    from tools.validate.report import Report

    data = tiny_config_data(caffe_model / "colors.keras", caffe_model / "colors.txt")
    data["model"].update(name="colors", preprocessing=stated, samples_dir=str(caffe_model / "samples"))
    config = parse_config(data)
    path = export_model(config, output_dir=tmp_path / "models", layouts=("channels_last",),
                        verbose=False)["channels_last"]
    info = structure.read_export_info(path)
    found = reference.find_source(info, config)
    assert found.source is not None, found.where
    report = Report(model="colors", version=1)
    accuracy.check_accuracy(report, "channels_last", serving.LoadedExport(path, "channels_last", "colors", 1), info,
                            config, lambda: found.source)
    [check] = [c for c in report.checks if c.name == "accuracy.samples" and c.layout == "channels_last"]
    assert check.passed is passes, check.detail
    if passes:
        assert check.detail.startswith("served top-1 accuracy 1.000 on 24 labelled images in 3 classes")
    else:
        assert "short of the Keras model's 1.000 with preprocessing caffe (stated: none" in check.detail
        assert "state preprocessing caffe" in check.detail
