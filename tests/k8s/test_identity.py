"""store.identity reaches the built ServiceAccount (and, for Azure, the pod template's label); no identity, no
annotation and no label."""
from __future__ import annotations

import pytest
import yaml

from tools import config as config_mod
from tools import kustomize, paths, render
from tools.check.policies import Overlay, run_policies

CLIENT_ID = "6a1f3c2e-9b7d-4e11-8f0a-2c5d7e9b1a34"
TENANT_ID = "0b8e2f4a-1c3d-4e5f-9a7b-6c8d0e2f4a1b"
AZ = {"uri": "az://models/tf", "azure_account": "teamstore"}
AZURE_LABEL = "azure.workload.identity/use"


@pytest.mark.parametrize("store, identity, annotation", [
    ({"uri": "gs://models/tf"}, {"gke": "models-reader@my-project.iam.gserviceaccount.com"},
     {"iam.gke.io/gcp-service-account": "models-reader@my-project.iam.gserviceaccount.com"}),
    ({"uri": "s3://models/tf"}, {"eks": "arn:aws:iam::123456789012:role/models-reader"},
     {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/models-reader"}),
    (AZ, {"aks": CLIENT_ID}, {"azure.workload.identity/client-id": CLIENT_ID}),
    (AZ, {"aks": CLIENT_ID, "tenant_id": TENANT_ID},
     {"azure.workload.identity/client-id": CLIENT_ID, "azure.workload.identity/tenant-id": TENANT_ID}),
    ({"uri": "gs://models/tf"}, None, None),
    (AZ, None, None),
])
def test_the_service_account_carries_the_identity(repo_copy, store, identity, annotation):
    data = yaml.safe_load((repo_copy / paths.MODEL_YAML).read_text())
    data["store"].update(store, identity=identity)
    (repo_copy / paths.MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    render.render(repo_copy)
    config = config_mod.load_config(repo_copy / paths.MODEL_YAML)
    for target in ("cpu", "gpu"):
        objects = kustomize.build(repo_copy / paths.OVERLAYS_DIR / target)
        (sa,) = [o for o in objects if o["kind"] == "ServiceAccount"]
        assert sa["metadata"].get("annotations") == annotation
        assert sa["automountServiceAccountToken"] is False
        (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        # Azure's webhook mutates only pods with this label; the selector must not carry it (it is immutable).
        assert pod_labels.get(AZURE_LABEL) == ("true" if identity and "aks" in identity else None)
        assert AZURE_LABEL not in deployment["spec"]["selector"]["matchLabels"]
        # The init step reads the store the identity can read, and every policy of `make check` holds.
        (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("tf-serving-model")]
        layout = config.targets[target].layout
        if store is AZ:
            assert cm["data"]["MODEL_SOURCE"] == (f":azureblob,env_auth,account=teamstore:models/tf/"
                                                  f"{config.model.name}/{layout}/{config.model.version}")
        assert all(not v for v in run_policies(Overlay(target, objects, config)).values())
