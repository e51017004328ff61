"""Fixtures of the Kubernetes tests: the overlays built once from the committed tree, and a throw-away copy
of the repository for tests that render or edit."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.k8s.helpers import REPO, copy_repo
from tools import config as config_mod
from tools import kustomize, paths


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def config():
    return config_mod.load_config(REPO / paths.MODEL_YAML)


@pytest.fixture(scope="session")
def config_data() -> dict:
    return yaml.safe_load((REPO / paths.MODEL_YAML).read_text())


@pytest.fixture(scope="session")
def built(config) -> dict[str, list[dict]]:
    """overlay name -> objects kustomize builds from the committed k8s/overlays/<name>."""
    return {name: kustomize.build(REPO / paths.OVERLAYS_DIR / name) for name in config.targets}
