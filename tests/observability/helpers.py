"""Helpers of the observability tests: configs with every switch set explicitly, rendered and built overlays."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import base_config_data
from tests.k8s.helpers import copy_repo, write_config
from tools import kustomize, paths, render
from tools.config import parse_config

# The thresholds the rule unit tests are written against (tests/observability/test_rules.py), independent of
# whatever the repository's model.yaml says.
THRESHOLDS = {"error_ratio": 0.01, "latency_slo_ms": 500, "queue_latency_ms": 100, "pods_not_ready_minutes": 15,
              "gpu_utilization_percent": 95, "gpu_memory_ratio": 0.95}
ALL_ON = {"pod_monitor": True, "alerts": True, "dashboard": True, "keda": True}
ALL_OFF = {"pod_monitor": False, "alerts": False, "dashboard": False, "keda": False}


def config_data(switches: dict | None = None, gpu_metric: str = "requests", **observability) -> dict:
    data = copy.deepcopy(base_config_data())
    obs = data.setdefault("observability", {})
    obs.update(ALL_ON if switches is None else switches)
    obs["thresholds"] = dict(THRESHOLDS)
    obs.update(observability)
    data["targets"]["gpu"]["autoscaling"]["metric"] = gpu_metric
    data["targets"]["cpu"]["autoscaling"]["metric"] = "cpu"
    return data


def config(switches: dict | None = None, gpu_metric: str = "requests", **observability):
    return parse_config(config_data(switches, gpu_metric, **observability), base=paths.REPO_ROOT)


def build_overlays(tmp_path: Path, data: dict) -> tuple[dict[str, list[dict]], Path]:
    """Render a copy of the repository with this config and build every overlay: (target -> objects, repo)."""
    repo = copy_repo(tmp_path / "repo")
    write_config(repo / paths.MODEL_YAML, data)
    render.render(repo)
    return {t: kustomize.build(repo / paths.OVERLAYS_DIR / t) for t in data["targets"]}, repo


def objects_of(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict], kind: str) -> dict:
    found = objects_of(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def require_binary(name: str) -> str:
    """The binary's path; a missing one fails the test in one line (never a skip: these tests must run)."""
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install Debian's prometheus package (`make promtool`)", pytrace=False)
    return found


def load_yaml_text(text: str) -> dict:
    return yaml.safe_load(text)
