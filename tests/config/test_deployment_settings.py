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


# --- Azure Blob Storage (az://) and AKS Workload Identity -------------------------------------------------------
CLIENT_ID = "6a1f3c2e-9b7d-4e11-8f0a-2c5d7e9b1a34"
TENANT_ID = "0b8e2f4a-1c3d-4e5f-9a7b-6c8d0e2f4a1b"


def az_store(**store):
    return lambda d: d["store"].update({"uri": "az://models/tf-serving", "azure_account": "teamstore", **store})


def test_an_az_store_with_an_aks_identity():
    config = cfg(az_store(identity={"aks": CLIENT_ID}))
    assert (config.store.scheme, config.store.azure_account) == ("az", "teamstore")
    assert config.store.identity.annotations == {"azure.workload.identity/client-id": CLIENT_ID}
    assert config.store.identity.pod_labels == {"azure.workload.identity/use": "true"}
    with_tenant = cfg(az_store(identity={"aks": CLIENT_ID, "tenant_id": TENANT_ID}))
    assert with_tenant.store.identity.annotations == {"azure.workload.identity/client-id": CLIENT_ID,
                                                      "azure.workload.identity/tenant-id": TENANT_ID}
    # The other providers need no pod label.
    gke = cfg(lambda d: d["store"].update(identity={"gke": "models-reader@my-project.iam.gserviceaccount.com"}))
    assert gke.store.identity.pod_labels == {}


def test_a_pvc_store_may_be_published_to_azure():
    config = cfg(lambda d: d["store"].update(uri="pvc://models/tf", publish_uri="az://models/tf",
                                             azure_account="teamstore"))
    assert config.store.azure_account == "teamstore"


@pytest.mark.parametrize("edit, message", [
    (az_store(azure_account=None), "store.azure_account: store.uri is an az:// URI: name its storage account here"),
    (az_store(azure_account="Team_Store"), "store.azure_account: 'Team_Store' is not a valid Azure storage account"),
    (az_store(azure_account="ab"), "store.azure_account: 'ab' is not a valid Azure storage account"),
    (lambda d: d["store"].update(azure_account="teamstore"),
     "store.azure_account: only az:// stores have a storage account, but store.uri is 'gs://"),
    (az_store(uri="az://Models/tf"), "store.uri: 'az://Models/tf': 'Models' is not a valid Azure Blob container"),
    (az_store(uri="az://my--models/tf"), "'my--models' is not a valid Azure Blob container"),
    (az_store(uri="az://models@teamstore.blob.core.windows.net/tf"),
     "store.uri: 'az://models@teamstore.blob.core.windows.net/tf': write az://<container>/<path> and the storage "
     "account in store.azure_account"),
    (az_store(uri="az://"), "store.uri: unsupported storage URI 'az://': use gs://, s3://, az://<container>/<path>"),
    (az_store(identity={"aks": "models-reader"}), "store.identity.aks: 'models-reader' is not a valid client ID"),
    (az_store(identity={"aks": CLIENT_ID, "tenant_id": "contoso"}),
     "store.identity.tenant_id: 'contoso' is not a valid tenant ID"),
    (az_store(identity={"gke": "models-reader@my-project.iam.gserviceaccount.com"}),
     "store.identity.gke: gke identity reads gs:// stores, but store.uri is 'az://models/tf-serving'"),
    (az_store(identity={"eks": "arn:aws:iam::123456789012:role/m"}), "eks identity reads s3:// stores"),
    (lambda d: d["store"].update(identity={"aks": CLIENT_ID}),
     "store.identity.aks: aks identity reads az:// stores, but store.uri is 'gs://"),
    (lambda d: d["store"].update(uri="s3://models/tf", identity={"aks": CLIENT_ID}),
     "store.identity.aks: aks identity reads az:// stores, but store.uri is 's3://models/tf'"),
    (lambda d: d["store"].update(identity={"gke": "models-reader@my-project.iam.gserviceaccount.com",
                                           "tenant_id": TENANT_ID}),
     "store.identity.tenant_id: only an aks identity has a tenant_id"),
    (az_store(identity={"aks": CLIENT_ID, "gke": "models-reader@my-project.iam.gserviceaccount.com"}),
     "store.identity: give exactly one of gke, eks, aks"),
])
def test_bad_azure_values_name_the_key(edit, message):
    with pytest.raises(ConfigError) as exc:
        cfg(edit)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
