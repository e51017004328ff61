"""Shared test configuration: options, and the one small exported model every test area reuses."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests import `export` and `tools` from the repository root; they are never installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Before any test imports TensorFlow: the channels_first tests run NCHW graphs on this CPU (tools/onednn.py).
from tools import onednn  # noqa: E402

onednn.prepare()

# Fixtures of the TF Serving test double (serving_double, tls_serving_double, closed_port), for any test area.
pytest_plugins = ["tests.serving_double.fixtures"]


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (built overlays) instead of comparing against them",
    )


SLOW_SECONDS = 30  # the cost of a slow-marked test that states none


def pytest_collection_modifyitems(config, items):
    """The costliest files first, by the seconds their slow marks state. `make test` hands whole files to one
    worker per core (pytest-xdist --dist loadfile, in collection order); the longest started last would leave
    one core idle while the other finishes them (longest-first is the classic fix for that). The sort is
    stable and uses only the marks, so every worker collects the same order."""
    cost: dict = {}
    for item in items:
        mark = item.get_closest_marker("slow")
        if mark is not None:
            cost[item.path] = cost.get(item.path, 0) + mark.kwargs.get("seconds", SLOW_SECONDS)
    items.sort(key=lambda item: -cost.get(item.path, 0))


# ---------------------------------------------------------------------------------------------------------
# The shared small model: one tiny ResNet-shaped Keras model and one export of it per test session.
# Tests that need a broken export copy this one into tmp_path and break the copy.

import copy  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

TINY_SIZE = (40, 48)  # height, width: not square, so a swapped axis shows
TINY_LABELS = ["red", "green", "blue", "gray"]


def tiny_resnet(num_classes: int = len(TINY_LABELS), size=TINY_SIZE, seed: int = 7):
    """A few-layer residual CNN with the layer types of keras.applications' ResNet (conv, BN, ReLU, add,
    padding, max and average pooling, softmax dense), small enough to export in seconds."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((size[0], size[1], 3))
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(8, 3, strides=2, name="stem_conv")(x)
    x = layers.BatchNormalization(axis=3)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    y = layers.Conv2D(8, 3, padding="same")(x)
    y = layers.BatchNormalization(axis=3)(y)
    y = layers.Activation("relu")(y)
    x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_resnet")


def base_config_data() -> dict:
    """model.yaml of the repository as plain data, for tests to modify."""
    from tools import paths
    from tools.config import load_yaml

    return copy.deepcopy(load_yaml(paths.REPO_ROOT / paths.MODEL_YAML))


def tiny_config_data(model_file, labels_file) -> dict:
    data = base_config_data()
    data["model"]["name"] = "tiny"
    # Version 1 with nothing pinned, as tiny_export writes it: validate compares the export of model.version
    # with model.digests, and the repository's digests (if it pins any) are of its own model.
    data["model"]["version"] = 1
    data["model"]["digests"] = {}
    data["model"]["source"] = {"model_file": str(model_file)}
    data["model"]["labels"] = str(labels_file)
    data["model"]["top_k"] = 3
    data["model"]["preprocessing"] = "none"
    for target in data["targets"].values():
        target["batching"]["max_batch_size"] = 4
    return data


@dataclass
class TinyExport:
    root: object  # Path of the output dir holding <name>/<layout>/<version>/
    name: str
    version: int
    dirs: dict  # layout -> Path of the version directory
    config: object  # tools.config.Config
    model_file: object  # Path of the .keras file
    labels_file: object


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """(model .keras path, labels path) of the shared tiny model."""
    d = tmp_path_factory.mktemp("tiny-model")
    model = tiny_resnet()
    model_file = d / "tiny.keras"
    model.save(model_file)
    labels_file = d / "labels.txt"
    labels_file.write_text("\n".join(TINY_LABELS) + "\n")
    return model_file, labels_file


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model_files) -> TinyExport:
    """Both layouts of version 1 of the tiny model, exported once per session. Do not modify: copy it."""
    from export.api import export_model
    from tools.config import parse_config

    model_file, labels_file = tiny_model_files
    config = parse_config(tiny_config_data(model_file, labels_file))
    root = tmp_path_factory.mktemp("tiny-export")
    dirs = export_model(config, version=1, output_dir=root, verbose=False)
    return TinyExport(root=root, name=config.model.name, version=1, dirs=dirs, config=config,
                      model_file=model_file, labels_file=labels_file)
