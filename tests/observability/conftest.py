"""Fixtures of the observability tests: the committed overlays built once."""
import pytest

from tools import config as config_mod
from tools import kustomize, paths


@pytest.fixture(scope="session")
def config():
    return config_mod.load_config(paths.REPO_ROOT / paths.MODEL_YAML)


@pytest.fixture(scope="session")
def built(config):
    return {name: kustomize.build(paths.REPO_ROOT / paths.OVERLAYS_DIR / name) for name in config.targets}
