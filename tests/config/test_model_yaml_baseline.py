"""The tests' model.yaml baseline (tests/model_yaml.py): whatever a bump or a fork did to the repository's file,
the baseline is the same text, comments and all."""
from ruamel.yaml import YAML

from tests.model_yaml import BASELINE, EXAMPLE_STORE, baseline_data, baseline_text, edit, repository_text
from tools.bump.model_yaml import set_version
from tools.config import parse_config

A, B = ("sha256:" + c * 64 for c in "ab")


def comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def test_the_baseline_is_valid_and_has_the_documented_values():
    config = parse_config(baseline_data())
    assert (config.model.name, config.model.version, config.model.digests) == ("resnet", 1, {})
    assert (config.store.uri, config.store.publish_uri) == (EXAMPLE_STORE, None)
    assert (config.deploy.namespace, config.deploy.argocd_namespace) == ("tf-serving", "argocd")
    assert "  digests: {}                   # sha256 of each layout's SHA256SUMS" in baseline_text()


def test_the_baseline_keeps_every_comment_of_the_repository_file():
    assert comments(baseline_text()) == comments(repository_text())


def test_a_bumped_forked_model_yaml_edits_back_to_the_same_baseline():
    bumped = set_version(baseline_text(), 3, {"channels_last": A, "channels_first": B})
    forked = edit(bumped, {"store.uri": "pvc://models/team", "store.publish_uri": "file:///mnt/nfs/models",
                           "deploy.repo_url": "https://git.example.com/team/serving.git",
                           "deploy.gpu_cluster_label.value": "a100"})
    assert "publish_uri: file:///mnt/nfs/models" in forked and "version: 3 " in forked
    assert edit(forked, BASELINE) == baseline_text()


def test_edit_changes_only_the_given_keys_and_pins_digests_as_the_bump_does():
    text = edit(baseline_text(), {"model.version": 4, "model.digests": {"channels_last": A}, "store.publish_uri": None})
    data = YAML(typ="safe", pure=True).load(text)
    expected = baseline_data()
    expected["model"].update(version=4, digests={"channels_last": A})
    assert data == expected
    assert text == set_version(baseline_text(), 4, {"channels_last": A})
