"""Digest pins from model.yaml reach every pod; without them `make check` fails unless a waiver says why."""
from __future__ import annotations

import yaml

from tools import kustomize, paths, render
from tools.check import CheckContext
from tools.check.image_pins import check_image_pins

D = {name: "sha256:" + ch * 64 for name, ch in (("rclone", "a"), ("python", "b"), ("cpu", "c"), ("gpu", "d"))}


def _configure(root, pins: bool, waiver: str | None):
    data = yaml.safe_load((root / paths.MODEL_YAML).read_text())
    data["images"]["pins"]["rclone/rclone"]["digest"] = D["rclone"] if pins else None
    data["images"]["pins"]["python"]["digest"] = D["python"] if pins else None
    for t in ("cpu", "gpu"):
        data["targets"][t]["image"]["digest"] = D[t] if pins else None
    data["images"]["unpinned_waiver"] = waiver
    (root / paths.MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    render.render(root)
    return list(check_image_pins(CheckContext(root)))


def test_all_pinned_passes_and_the_digests_reach_every_container(repo_copy):
    (result,) = _configure(repo_copy, pins=True, waiver=None)
    assert result.passed and result.name == "images: every image pinned by digest"
    objects = kustomize.build(repo_copy / paths.OVERLAYS_DIR / "gpu")
    images = {c["image"] for o in objects if o["kind"] in ("Deployment", "Job")
              for c in o["spec"]["template"]["spec"].get("initContainers", []) + o["spec"]["template"]["spec"]["containers"]}
    assert images == {f"rclone/rclone:1.75.1@{D['rclone']}", f"python:3.13.14-slim-trixie@{D['python']}",
                      f"tensorflow/serving:2.20.0-gpu@{D['gpu']}"}


def test_unpinned_without_a_waiver_fails_naming_each_image(repo_copy):
    (result,) = _configure(repo_copy, pins=False, waiver=None)
    assert not result.passed
    assert "rclone/rclone:1.75.1: no digest" in result.detail and "tensorflow/serving:2.20.0-gpu: no digest" in result.detail


def test_a_waiver_turns_the_failure_into_a_named_warning(repo_copy):
    (result,) = _configure(repo_copy, pins=False, waiver="mirror not set up yet")
    assert result.passed and result.name.startswith("images: WARNING 4 image(s) not pinned by digest")
    assert "mirror not set up yet" in result.name
