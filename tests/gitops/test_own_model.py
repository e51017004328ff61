"""A user's own model from file to a bump branch, as the README's own-model commands run it, in a temporary
repository with a bare remote, a file:// store and a recording `gh`: a tiny trained `.keras` is exported,
validated (with labelled samples), published (its source uploaded once, by sha256) and pinned (version 1,
both digests and model.source.sha256). Then the digests are re-derived with the local model file deleted
(fetched from the store), as CI does.

Proven elsewhere, with less work, and so not repeated here: verify-digests refusing a source with other bytes and
a wrong pin (tests/gitops/test_verify_digests.py); an export whose model file is absent reading the verified copy
in build/sources (tests/export/test_sources.py; verify-digests' own re-export below reads it too, and gives the
pinned digests, so CI's next export is byte for byte the one validated here); validation finding its parity
reference there by sha256
(tests/validate/test_broken_exports.py::test_parity_uses_the_exports_own_source_not_model_yaml)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gitops.test_bump import COPIED, GIT_ENV, REPO, Clone, git
from tests.model_yaml import write_baseline
from tools import paths, render
from tools.check import golden
from tools.config import load_config

NAME = "colors"
SLOW = 200  # seconds on 2 quiet cores: training, two exports (one of them verify-digests'), one validation
TIMES: dict[str, float] = {}


def train(root: Path) -> None:
    """models/colors.keras (trained on caffe input), colors.txt, samples/<class>/*.jpg under root."""
    import keras
    import numpy as np
    import tensorflow as tf
    from keras.applications import imagenet_utils

    from export import preprocess
    from tests.export.test_trained_model import COLORS, INPUT, color_images

    keras.utils.set_random_seed(5)
    jpegs, labels = color_images(150, seed=1)
    x = preprocess.decode_batch(tf.constant(jpegs), INPUT, 10_000_000).numpy()
    x = imagenet_utils.preprocess_input(x, data_format="channels_last", mode="caffe")
    inputs = keras.Input((*INPUT, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(len(COLORS), activation="softmax")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, epochs=15, batch_size=16, verbose=0)
    (root / "models").mkdir()
    model.save(root / "models" / f"{NAME}.keras")
    (root / f"{NAME}.txt").write_text("\n".join(COLORS) + "\n")
    for i, (data, k) in enumerate(zip(*color_images(24, seed=7))):
        (root / "samples" / COLORS[k]).mkdir(parents=True, exist_ok=True)
        (root / "samples" / COLORS[k] / f"{i}.jpg").write_bytes(data)


@pytest.fixture(scope="module")
def own_template(tmp_path_factory):
    """A fork whose model.yaml names its own model file (gitignored, as *.keras is), labels and samples."""
    base = tmp_path_factory.mktemp("own-model")
    root, store = base / "repo", base / "store"
    root.mkdir()
    for name in [*COPIED, "export"]:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    train(root)
    write_baseline(root / paths.MODEL_YAML, {
        "store.uri": "pvc://models/colors", "store.publish_uri": f"file://{store}",
        "model.name": NAME, "model.source.model_file": f"models/{NAME}.keras", "model.labels": f"{NAME}.txt",
        "model.preprocessing": "caffe", "model.top_k": 2, "model.samples_dir": "samples"})
    render.render(root)
    golden.write(root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "our own model")
    assert not git(root, "ls-files", "models")  # the model file itself never goes into git
    return root, store


def run(clone, what: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "GH_STUB_LOG": str(clone.gh_log), "PATH": f"{clone.bin}:{os.environ['PATH']}"}
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", *args], cwd=clone.root, env=env, capture_output=True, text=True,
                            timeout=600)
    TIMES[what] = time.monotonic() - start
    if ok:
        assert result.returncode == 0, f"{what}: {result.stderr}"
    return result


@pytest.mark.slow(seconds=SLOW)  # two exports and one validation, each in its own process
def test_own_model_from_file_to_a_pinned_bump_branch_and_rederived_from_the_store(own_template, tmp_path, fakes):
    clone = Clone(*own_template, tmp_path, fakes)
    model_file = clone.root / "models" / f"{NAME}.keras"
    shutil.copy2(own_template[0] / "models" / f"{NAME}.keras", model_file)  # untracked: not in the template's git
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()

    try:
        _own_model_flow(clone, model_file, sha)
    finally:
        print("wall times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMES.items()))


def _own_model_flow(clone, model_file: Path, sha: str) -> None:
    run(clone, "export", "export")
    assert paths.source_cache_file(clone.root, sha, ".keras").is_file()
    validated = run(clone, "validate", "tools", "validate")
    assert "accuracy.samples" in validated.stdout + validated.stderr
    published = run(clone, "publish", "tools", "publish")
    stored = Path(paths.store_source_uri(str(clone.store), NAME, sha, ".keras"))
    assert stored.read_bytes() == model_file.read_bytes()
    assert f"source: uploaded" in published.stderr
    again = run(clone, "publish again", "tools", "publish")
    assert "source: already in the store" in again.stderr and "every file verified" in again.stderr

    run(clone, "bump", "tools", "bump", "1")  # the first pin of a fresh repository
    branch = f"model/{NAME}-v1"
    pinned_yaml = git(clone.root, "show", f"{branch}:{paths.MODEL_YAML}")
    assert f"    sha256: {sha}" in pinned_yaml
    [call] = clone.gh_calls()
    assert f"Source: `{sha}` (model.source.sha256), stored at `pvc://models/colors/{NAME}/sources/sha256-{sha}.keras`" \
        in call["body"]
    git(clone.root, "switch", "--quiet", branch)
    pinned = load_config(clone.root / paths.MODEL_YAML)
    assert pinned.model.version == 1 and set(pinned.model.digests) == set(paths.LAYOUTS)
    assert pinned.model.source.sha256 == sha

    # What CI has: the repository, no model file, no build/: the source comes from the store.
    model_file.unlink()
    shutil.rmtree(clone.root / paths.BUILD_DIR)
    verified = run(clone, "verify-digests (source fetched)", "tools", "verify-digests", "--verbose")
    assert f"{NAME}.keras is absent here: fetching sha256 {sha[:12]} from the model store" in verified.stderr
    # Its re-export reads the fetched copy from build/sources, as CI's `make export` after it does: so that export
    # is byte for byte the one validated and pinned above (its digests are the pinned ones).
    cached = paths.source_cache_file(clone.root, sha, ".keras")
    assert f"{NAME}.keras is absent here: using the cached copy {cached}" in verified.stderr
    for layout in paths.LAYOUTS:
        assert f"{layout}: {pinned.model.digests[layout]} re-derived from source sha256 {sha}" in verified.stderr
    assert not (clone.root / paths.MODELS_DIR).exists()  # the re-export never touches build/models
