"""The golden-set analysis Job of a canary, run as Kubernetes would run the rendered container (its command, its
environment from the ConfigMaps it names, its mounts) against the TF Serving test double standing in for the canary
Service: the right model passes (exit 0: the AnalysisRun's metric succeeds), a wrong one fails (the rollout aborts).

Only what cannot exist here is replaced: the canary Service's URL (the double's), and the golden set, recorded for
the tiny test model instead of the repository's ResNet (as tests/goldenset/test_replay.py does)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from tests.goldenset.conftest import labels_shuffled_export, tiny_golden, tiny_loaded  # noqa: F401  (session fixtures)
from tests.k8s.helpers import copy_repo, write_config
from tests.observability.helpers import objects_of
from tests.rollout.helpers import canary_data
from tests.serving_double import ServingDouble
from tools import kustomize, paths, render
from tools.goldenset import overlay
from tools.render import names

# The analysis Job's script against real exports (the golden set's session fixtures).
pytestmark = pytest.mark.slow(seconds=30)


@pytest.fixture(scope="module")
def job_pod(tmp_path_factory):
    """(the golden-set AnalysisTemplate's Job pod spec, {ConfigMap name: data}) of the built gpu canary overlay."""
    # Only the gpu overlay is built (its Job is what runs here); the cpu one renders from the same templates.
    repo = copy_repo(tmp_path_factory.mktemp("canary-job") / "repo")
    write_config(repo / paths.MODEL_YAML, canary_data())
    render.render(repo)
    objects = kustomize.build(repo / paths.OVERLAYS_DIR / "gpu")
    template = [o for o in objects_of(objects, "AnalysisTemplate") if o["metadata"]["name"] == names.ANALYSIS_GOLDEN_SET][0]
    pod = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    return pod, {o["metadata"]["name"]: o.get("data") or {} for o in objects_of(objects, "ConfigMap")}


def run_job(pod, config_maps, tmp_path, url, golden_files, version):
    """Run the Job's container locally: ConfigMap volumes written to folders, envFrom + env as the kubelet sets them."""
    container = pod["containers"][0]
    volumes = {v["name"]: v["configMap"]["name"] for v in pod["volumes"]}
    where = {}
    for mount in container["volumeMounts"]:
        cm = volumes[mount["name"]]
        folder = tmp_path / mount["name"]
        folder.mkdir()
        files = golden_files if cm.startswith(names.GOLDEN_SET_CONFIGMAP) else config_maps[cm]
        for name, text in files.items():
            (folder / name).write_text(text)
        where[mount["mountPath"]] = str(folder)
    env = {k: v for source in container["envFrom"] for k, v in config_maps[source["configMapRef"]["name"]].items()}
    env.update({e["name"]: e["value"] for e in container["env"]})
    for key, value in env.items():
        env[key] = where.get(value, value)
    assert env["SMOKE_URL"] == f"http://{names.CANARY_SERVICE}:{names.HTTP_PORT}"
    # The canary Service is the double; the golden set is the tiny model's, so are its name and version.
    env.update(SMOKE_URL=url, MODEL_NAME="tiny", MODEL_VERSION=str(version), SMOKE_DEADLINE_SECONDS="5",
               PATH=os.environ.get("PATH", ""))
    command = [sys.executable if c == "python3" else c for c in container["command"]]
    command = [next((c.replace(p, d) for p, d in where.items() if c.startswith(p + "/")), c) for c in command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def golden_files(tiny_export, tiny_golden, version):
    config = tiny_export.config
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, version=version))
    expected, images = overlay.render_texts(tiny_golden[0].golden_set, config, config.targets["gpu"])
    return {paths.GOLDEN_EXPECTED_FILE: expected, paths.GOLDEN_IMAGES_FILE: images}


def test_the_analysis_job_passes_for_the_reviewed_model(job_pod, serving_double, tiny_export, tiny_golden, tmp_path):
    pod, config_maps = job_pod
    result = run_job(pod, config_maps, tmp_path, serving_double.rest_url,
                     golden_files(tiny_export, tiny_golden, 1), version=1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answered all" in result.stdout


def test_the_analysis_job_fails_for_a_model_that_answers_differently(job_pod, labels_shuffled_export, tiny_export,
                                                                     tiny_golden, tmp_path):
    pod, config_maps = job_pod
    # The canary serves the labels-shuffled export as the new version: the golden set recorded at review says otherwise.
    with ServingDouble({"tiny": {2: labels_shuffled_export}}) as double:
        result = run_job(pod, config_maps, tmp_path, double.rest_url,
                         golden_files(tiny_export, tiny_golden, 2), version=2)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "golden" in (result.stdout + result.stderr).lower()
