"""Model sources: seeded architecture weights are deterministic, a weights file loads, 1001 classes work."""
import json

import keras
import pytest

from export.api import export_model
from export.source import load_source, weights_sha256
from tests.conftest import base_config_data, tiny_config_data
from tools import paths
from tools.config import parse_config
from tools.errors import UserError


def settings(**source):
    data = base_config_data()
    data["model"]["source"] = {"architecture": "ResNet50", **source}
    return parse_config(data).model


@pytest.mark.slow
def test_seeded_weights_are_deterministic_and_a_weights_file_reproduces_them(tmp_path):
    a = load_source(settings(seed=5))
    b = load_source(settings(seed=5))
    assert a.info["weights_sha256"] == b.info["weights_sha256"]
    assert a.input_size == (224, 224) and a.num_classes == 1000 and a.info["output_activation"] == "softmax"
    weights = tmp_path / "resnet50.weights.h5"
    a.model.save_weights(weights)
    c = load_source(settings(weights=str(weights)))
    assert c.info["weights_sha256"] == a.info["weights_sha256"]
    assert c.info["weights_file"] == "resnet50.weights.h5"
    assert load_source(settings(seed=6)).info["weights_sha256"] != a.info["weights_sha256"]


def test_a_weights_file_for_another_architecture_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 3))
    small = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    weights = tmp_path / "small.weights.h5"
    small.save_weights(weights)
    with pytest.raises(UserError, match="does not fit ResNet50 with 1000 classes"):
        load_source(settings(weights=str(weights)))


def test_logits_models_get_a_softmax_and_other_activations_are_refused(tmp_path):
    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    logits = keras.Model(inputs, keras.layers.Dense(3)(flat))
    sigmoid = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(flat))
    for name, model in [("logits", logits), ("sigmoid", sigmoid)]:
        model.save(tmp_path / f"{name}.keras")
    assert load_source(settings_for(tmp_path / "logits.keras")).info["output_activation"] == "linear"
    with pytest.raises(UserError, match="output activation is 'sigmoid'"):
        load_source(settings_for(tmp_path / "sigmoid.keras"))


def settings_for(model_file, preprocessing="none"):
    data = base_config_data()
    data["model"]["source"] = {"model_file": str(model_file)}
    data["model"]["preprocessing"] = preprocessing  # a model file's preprocessing is stated, never guessed
    return parse_config(data).model


def test_a_model_without_a_fixed_input_size_is_refused(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "any.keras")
    with pytest.raises(UserError, match="input size must be fixed"):
        load_source(settings_for(tmp_path / "any.keras"))


def test_a_1001_class_model_exports_with_background_as_class_zero(tmp_path):
    from tests.conftest import tiny_resnet

    model_file = tmp_path / "m1001.keras"
    tiny_resnet(num_classes=1001).save(model_file)
    data = tiny_config_data(model_file, "unused")
    data["model"]["labels"] = None
    config = parse_config(data)
    dirs = export_model(config, output_dir=tmp_path / "out", layouts=("channels_last",), verbose=False)
    labels = (dirs["channels_last"] / paths.ASSETS_DIR / paths.LABELS_FILE).read_text().splitlines()
    assert labels[:2] == ["background", "tench"] and len(labels) == 1001
    info = json.loads((dirs["channels_last"] / paths.ASSETS_EXTRA_DIR / paths.EXPORT_INFO_FILE).read_text())
    assert info["num_classes"] == 1001
    assert not (tmp_path / "out" / "tiny" / "channels_first").exists()


def test_weights_fingerprint_changes_with_any_weight():
    from tests.conftest import tiny_resnet

    model = tiny_resnet()
    before = weights_sha256(model)
    w = model.get_weights()
    w[0] = w[0] * 1.0001
    model.set_weights(w)
    assert weights_sha256(model) != before


# --- Issue 10: the source file by content: local cache, the store, and the pinned sha256. ---
def source_config(tmp_path, sha256=None, version=1):
    from tools import sources  # noqa: F401

    data = base_config_data()
    data["model"].update(version=version, digests={}, preprocessing="none")
    data["model"]["source"] = {"model_file": "mine.keras", "sha256": sha256}
    data["store"] = {"uri": f"file://{tmp_path / 'store'}", "publish_uri": None}
    (tmp_path / "repo").mkdir(exist_ok=True)
    return parse_config(data, base=tmp_path / "repo")


def test_export_keeps_the_source_in_the_cache_and_refuses_other_bytes_than_the_pin(tmp_path):
    import hashlib

    from tools import sources

    model = tmp_path / "repo" / "mine.keras"
    (tmp_path / "repo").mkdir()
    model.write_bytes(b"reviewed model bytes")
    sha = hashlib.sha256(b"reviewed model bytes").hexdigest()
    config = source_config(tmp_path, sha)
    assert sources.resolve(config, 1) == model
    cached = paths.source_cache_file(tmp_path / "repo", sha, ".keras")
    assert cached.read_bytes() == model.read_bytes()
    model.write_bytes(b"retrained since")
    other = hashlib.sha256(b"retrained since").hexdigest()
    with pytest.raises(UserError, match=f"mine.keras has sha256 {other}, but model.source.sha256 pins {sha}"):
        sources.resolve(config, 1)
    # A new version is another source: the pin is that of model.version only.
    assert sources.resolve(config, 2) == model
    # The cache entry may be a hardlink that the in-place rewrite changed too: it is never used unverified.
    model.unlink()
    with pytest.raises(UserError, match="is not in the model store"):
        sources.resolve(config, 1)


def test_an_absent_source_comes_from_the_store_by_sha256_and_is_checked(tmp_path):
    import hashlib

    from tools import sources

    data = b"the model, in the store"
    sha = hashlib.sha256(data).hexdigest()
    config = source_config(tmp_path, sha)
    stored = __import__("pathlib").Path(paths.store_source_uri(str(tmp_path / "store"), config.model.name, sha,
                                                               ".keras"))
    with pytest.raises(UserError, match="is not in the model store"):
        sources.resolve(config, 1)
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)
    lines = []
    got = sources.resolve(config, 1, log=lines.append)
    assert got == paths.source_cache_file(tmp_path / "repo", sha, ".keras") and got.read_bytes() == data
    assert lines == [f"mine.keras is absent here: fetching sha256 {sha[:12]} from the model store"]
    got.unlink()
    stored.write_bytes(b"tampered")
    with pytest.raises(UserError, match=f"is corrupt: its sha256 is {hashlib.sha256(b'tampered').hexdigest()}, "
                                        f"but model.source.sha256 pins {sha}"):
        sources.resolve(config, 1)
    assert not list((tmp_path / "repo" / paths.SOURCES_DIR).iterdir())  # nothing half-written left behind


def test_an_absent_source_is_read_from_the_cache_when_its_copy_there_is_the_pinned_one(tmp_path):
    """What CI's `make export` after `make verify-digests` does: the fetched copy is used, the store not read."""
    import hashlib

    from tools import sources

    data = b"the model, fetched before"
    sha = hashlib.sha256(data).hexdigest()
    config = source_config(tmp_path, sha)  # its store is an empty folder: reading it would fail
    cached = paths.source_cache_file(tmp_path / "repo", sha, ".keras")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    lines = []
    assert sources.resolve(config, 1, log=lines.append) == cached
    assert lines == [f"mine.keras is absent here: using the cached copy {cached}"]
    cached.write_bytes(b"changed in the cache")  # never used unverified: the store is asked, and has nothing
    with pytest.raises(UserError, match="is not in the model store"):
        sources.resolve(config, 1)


def test_an_absent_source_without_a_pin_is_an_error(tmp_path):
    from tools import sources

    with pytest.raises(UserError, match="model.source.model_file: .*mine.keras does not exist \\(model.source.sha256 "
                                        "pins nothing to fetch from the model store\\)"):
        sources.resolve(source_config(tmp_path), 1)


def test_model_yaml_source_sha256_and_samples_dir_are_validated():
    from tools.config import ConfigError

    data = base_config_data()
    data["model"]["source"] = {"architecture": "ResNet50", "sha256": "ab" * 32}
    with pytest.raises(ConfigError, match="model.source.sha256: pins the sha256 of a model file or weights file, "
                                          "but neither is set"):
        parse_config(data)
    data["model"]["source"] = {"model_file": "m.keras", "sha256": "not-hex"}
    with pytest.raises(ConfigError, match="model.source.sha256: 'not-hex' is not a valid sha256"):
        parse_config(data)
    data["model"]["source"] = {"model_file": "m.keras", "sha256": "ab" * 32}
    data["model"]["samples_dir"] = "samples"
    model = parse_config(data, base=paths.REPO_ROOT).model
    assert model.source.sha256 == "ab" * 32 and model.samples_dir == paths.REPO_ROOT / "samples"
