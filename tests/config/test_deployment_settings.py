"""model.yaml keys of issue 12: targets.<t>.platform / tolerations / rollout, store.identity, images."""
from __future__ import annotations

import copy

import pytest
import yaml

from tools import paths
from tools.config import ConfigError, GPU_PLATFORMS, Rollout, parse_config

REPO_DATA = yaml.safe_load((paths.REPO_ROOT / paths.MODEL_YAML).read_text())


def cfg(edit):
    data = copy.deepcopy(REPO_DATA)
    edit(data)
    return parse_config(data)


def test_every_platform_keeps_the_gpu_limit_and_names_its_labels():
    for platform, s in GPU_PLATFORMS.items():
        c = cfg(lambda d: d["targets"]["gpu"].update(platform=platform))
        assert c.targets["gpu"].scheduling == s
    gke = cfg(lambda d: d["targets"]["gpu"].update(platform="gke")).targets["gpu"].scheduling
    assert gke.required_label_keys == ("cloud.google.com/gke-accelerator",) and gke.node_selector == {}
    assert GPU_PLATFORMS["aks"].node_selector == {"accelerator": "nvidia"}
    assert GPU_PLATFORMS["gpu-operator"].node_selector == {"nvidia.com/gpu.present": "true"}


def test_explicit_selector_replaces_and_tolerations_add():
    c = cfg(lambda d: d["targets"]["gpu"].update(
        platform="gke", node_selector={"pool": "gpu"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]))
    s = c.targets["gpu"].scheduling
    assert s.node_selector == {"pool": "gpu"} and s.required_label_keys == ()
    assert [t.key for t in s.tolerations] == ["nvidia.com/gpu", "dedicated"]


def test_rollout_defaults_per_target():
    def no_rollout(d):
        for t in d["targets"].values():
            t.pop("rollout", None)
    c = cfg(no_rollout)
    assert c.targets["cpu"].rollout == Rollout(1, 0)
    assert c.targets["gpu"].rollout == Rollout(0, 1)  # min_replicas 2: no spare GPU needed

    def one_gpu(d):
        no_rollout(d)
        d["targets"]["gpu"]["autoscaling"]["min_replicas"] = 1
    assert cfg(one_gpu).targets["gpu"].rollout == Rollout(1, 0)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["targets"]["gpu"].update(platform="openshift"),
     "targets.gpu.platform: must be one of generic, gke, eks, aks, gpu-operator; got 'openshift'"),
    (lambda d: d["targets"]["cpu"].update(platform="gke"), "targets.cpu.platform: applies to GPU targets only"),
    (lambda d: d["targets"]["gpu"].update(rollout={"max_surge": 0, "max_unavailable": 0}),
     "targets.gpu.rollout: max_surge and max_unavailable cannot both be 0"),
    (lambda d: d["targets"]["gpu"].update(rollout={"max_surge": 0, "max_unavailable": 2}),
     "targets.gpu.rollout.max_unavailable: max_unavailable 2 would take every serving pod down"),
    (lambda d: d["targets"]["gpu"].update(tolerations=[{"key": "sku", "operator": "Equal"}]),
     "targets.gpu.tolerations[0].value: is required with operator Equal"),
    (lambda d: d["targets"]["gpu"].update(tolerations=[{"key": "sku", "effect": "Sometimes"}]),
     "targets.gpu.tolerations[0].effect: must be one of NoSchedule, PreferNoSchedule, NoExecute"),
    (lambda d: d["store"].update(identity={"eks": "arn:aws:iam::123456789012:role/models"}),
     "store.identity.eks: eks identity reads s3:// stores, but store.uri is 'gs://"),
    (lambda d: d["store"].update(identity={"gke": "not-an-email"}),
     "store.identity.gke: 'not-an-email' is not a valid Google service account e-mail"),
    (lambda d: d["store"].update(identity={"azure": "x"}), "store.identity: give exactly one of gke, eks"),
    (lambda d: d["images"]["pins"]["python"].update(digest="sha256:short"),
     "images.pins.python.digest: 'sha256:short' is not a valid image digest"),
])
def test_bad_values_name_the_key(edit, message):
    with pytest.raises(ConfigError) as exc:
        cfg(edit)
    assert message in str(exc.value)


def test_identity_annotations():
    gke = cfg(lambda d: d["store"].update(identity={"gke": "models-reader@my-project.iam.gserviceaccount.com"}))
    assert gke.store.identity.annotations == {
        "iam.gke.io/gcp-service-account": "models-reader@my-project.iam.gserviceaccount.com"}
    eks = cfg(lambda d: d["store"].update(uri="s3://models/tf", identity={"eks": "arn:aws:iam::123456789012:role/m"}))
    assert eks.store.identity.annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/m"}
