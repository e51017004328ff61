"""store.identity reaches the built ServiceAccount; no identity, no annotation."""
from __future__ import annotations

import pytest
import yaml

from tools import kustomize, paths, render


@pytest.mark.parametrize("uri, identity, annotation", [
    ("gs://models/tf", {"gke": "models-reader@my-project.iam.gserviceaccount.com"},
     {"iam.gke.io/gcp-service-account": "models-reader@my-project.iam.gserviceaccount.com"}),
    ("s3://models/tf", {"eks": "arn:aws:iam::123456789012:role/models-reader"},
     {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/models-reader"}),
    ("gs://models/tf", None, None),
])
def test_the_service_account_carries_the_identity(repo_copy, uri, identity, annotation):
    data = yaml.safe_load((repo_copy / paths.MODEL_YAML).read_text())
    data["store"].update(uri=uri, identity=identity)
    (repo_copy / paths.MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    render.render(repo_copy)
    for target in ("cpu", "gpu"):
        (sa,) = [o for o in kustomize.build(repo_copy / paths.OVERLAYS_DIR / target) if o["kind"] == "ServiceAccount"]
        assert sa["metadata"].get("annotations") == annotation
        assert sa["automountServiceAccountToken"] is False
