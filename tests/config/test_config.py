"""model.yaml validation: every bad value is reported with its key path."""
import pytest

from tests.conftest import base_config_data
from tools import paths
from tools.config import ConfigError, load_config, parse_config
from tools.errors import UserError


def test_the_repository_model_yaml_is_valid():
    # Only what every fork keeps: both layouts served, and each target's warmup ends at its largest batch.
    config = load_config()
    assert {t.layout for t in config.targets.values()} == set(paths.LAYOUTS)
    for target in config.targets.values():
        assert config.warmup_batch_sizes(target.layout)[-1] >= target.batching.max_batch_size


def test_the_example_values_resolve_as_documented():
    config = parse_config(base_config_data())
    if config.model.source.model_file is None and config.model.preprocessing == "auto":
        expected = "tf" if config.model.source.architecture.endswith("V2") else "caffe"
        assert config.model.preprocessing_mode == expected
    data = mutate("targets.cpu.resources.cpu", "3500m")
    assert parse_config(data).targets["cpu"].resources.cpu_cores == 4
    data = mutate("targets.cpu.batching.max_batch_size", 32)
    data["targets"]["cpu"]["batching"].pop("allowed_batch_sizes", None)
    assert parse_config(data).targets["cpu"].batching.warmup_batch_sizes() == (1, 2, 4, 8, 16, 32)


def mutate(path: str, value):
    data = base_config_data()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("model.colour", "red", "model: unknown key 'colour'"),
        ("targets.cpu.resources.cpus", 4, "targets.cpu.resources: unknown key 'cpus'"),
        ("model.version", "2", "model.version: must be an integer, got the string '2'"),
        ("model.version", 1.5, "model.version: must be an integer, got the number 1.5"),
        ("model.version", 0, "model.version: must be at least 1, got 0"),
        ("model.version", True, "model.version: must be an integer, got the boolean true"),
        ("model.name", DELETE, "model.name: is required"),
        ("model.name", "ResNet", "model.name: 'ResNet' is not a valid model name"),
        ("model.top_k", 1001, "model.top_k: must be at most the number of classes (1000), got 1001"),
        ("model.preprocessing", "imagenet", "model.preprocessing: must be one of auto, caffe, tf, torch, none"),
        ("model.source.architecture", "ResNet18", "model.source.architecture: must be one of ResNet50"),
        ("model.source.model_file", "model.onnx", "model.source.model_file: must be a .keras or .h5 file"),
        ("model.digests", {"channels_last": "abc"}, "model.digests.channels_last: 'abc' is not a valid digest"),
        ("targets.cpu.autoscaling.min_replicas", -1, "targets.cpu.autoscaling.min_replicas: must be at least 1, got -1"),
        ("targets.cpu.autoscaling.max_replicas", 1, "targets.cpu.autoscaling.max_replicas: must be at least min_replicas (2)"),
        ("targets.gpu.gpus", 0, "targets.gpu.gpus: must be at least 1 for an nvidia target, got 0"),
        ("targets.cpu.layout", "channels_first", "targets.cpu.layout: channels_first needs a GPU target"),
        ("targets.cpu.gpus", 1, "targets.cpu.gpus: must be 0 on a target without an accelerator"),
        ("targets.cpu.image.repository", "Tensorflow/Serving!", "targets.cpu.image.repository: 'Tensorflow/Serving!' is not a valid image repository"),
        ("targets.cpu.image.tag", "latest", "targets.cpu.image.tag: 'latest' is not a pinned version"),
        ("targets.cpu.image.tag", "2.20.0-gpu", "targets.cpu.image.tag: a CPU target needs the CPU serving image"),
        ("targets.gpu.image.tag", "2.20.0", "targets.gpu.image.tag: a GPU target needs a -gpu serving image tag"),
        ("targets.cpu.image.digest", "sha256:xyz", "targets.cpu.image.digest: 'sha256:xyz' is not a valid image digest"),
        ("targets.cpu.resources.memory", "4 GB", "targets.cpu.resources.memory: must be a Kubernetes quantity"),
        ("targets.cpu.resources.cpu", 0, "targets.cpu.resources.cpu: must be a positive number of cores"),
        ("targets.gpu.gpu_memory_fraction", 1.5, "targets.gpu.gpu_memory_fraction: must be in (0.0, 1.0]"),
        ("targets.cpu.batching.max_batch_size", 5000, "targets.cpu.batching.max_batch_size: must be at most 1000"),
        ("targets.cpu.batching.allowed_batch_sizes", [8, 4, 32], "targets.cpu.batching.allowed_batch_sizes: must increase and end with max_batch_size"),
        ("store.uri", "http://models.example.com/x", "store.uri: unsupported storage URI 'http://models.example.com/x'"),
        ("store.uri", "gs://bucket/models/", "store.uri: 'gs://bucket/models/' must not end with '/'"),
        ("store.uri", "pvc://Bad_Claim/x", "store.uri: 'pvc://Bad_Claim/x' is not pvc://<claim-name>"),
        ("targets", {}, "targets: must define at least one target"),
        ("targets.cpu", [], "targets.cpu: must be a mapping, got a list"),
        ("deploy.gpu_cluster_label", {"key": "bad key", "value": "x"}, "deploy.gpu_cluster_label.key: 'bad key' is not a valid label key"),
    ],
)
def test_bad_values_name_their_key_path(path, value, message):
    with pytest.raises(ConfigError) as err:
        parse_config(mutate(path, value))
    assert message in str(err.value)
    assert str(err.value).startswith("model.yaml: ")
    assert "\n" not in str(err.value)


def test_a_digest_for_a_layout_no_target_serves():
    data = mutate("model.digests", {"channels_first": "sha256:" + "a" * 64})
    del data["targets"]["gpu"]
    with pytest.raises(ConfigError, match="model.digests.channels_first: no target serves channels_first"):
        parse_config(data)


def test_yaml_syntax_errors_and_duplicate_keys_are_one_line(tmp_path):
    f = tmp_path / "model.yaml"
    f.write_text("model:\n  name: a\n  name: b\n")
    with pytest.raises(UserError, match="not valid YAML") as err:
        load_config(f)
    assert "\n" not in str(err.value)
    f.write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(UserError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_relative_paths_resolve_next_to_the_config_file(tmp_path):
    data = mutate("model.labels", "labels/classes.txt")
    config = parse_config(data, base=tmp_path)
    assert config.model.labels == tmp_path / "labels" / "classes.txt"


def test_warmup_batch_sizes_follow_allowed_batch_sizes():
    data = mutate("targets.cpu.batching.allowed_batch_sizes", [4, 16, 32])
    assert parse_config(data).warmup_batch_sizes("channels_last") == (4, 16, 32)
