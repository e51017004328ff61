"""Strict schema validation of the built overlays on several Kubernetes versions."""
from __future__ import annotations

import copy

import pytest

from tools.check.schema import KUBERNETES_VERSIONS, validate_objects


def deployment(objects):
    return copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))


def test_at_least_three_kubernetes_minor_versions():
    assert len(set(KUBERNETES_VERSIONS)) >= 3


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_every_built_object_is_valid_on_every_version(built, overlay):
    report = validate_objects(built[overlay])
    assert report.errors == []
    assert report.skipped == []
    assert report.validated == len(built[overlay])


def test_a_misspelled_field_fails_on_every_version(built):
    d = deployment(built["cpu"])
    container = d["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    report = validate_objects([d])
    assert len(report.errors) == 1
    assert "'readinesProbe' was unexpected" in report.errors[0]
    assert f"Kubernetes {', '.join(KUBERNETES_VERSIONS)}" in report.errors[0]


def test_a_wrong_type_fails(built):
    d = deployment(built["gpu"])
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "forty-five"
    report = validate_objects([d])
    assert report.errors and "terminationGracePeriodSeconds" in report.errors[0]


def test_a_field_newer_than_the_oldest_version_fails_there_only(built):
    # Pod-level resources (spec.resources) appeared after Kubernetes 1.31.
    d = deployment(built["cpu"])
    d["spec"]["template"]["spec"]["resources"] = {"limits": {"cpu": "4"}}
    report = validate_objects([d], versions=("1.31", "1.37"))
    assert report.errors == ["Deployment/tf-serving (apps/v1, Kubernetes 1.31): spec.template.spec: "
                             "Additional properties are not allowed ('resources' was unexpected)"]


def test_an_unknown_builtin_api_version_fails(built):
    d = deployment(built["cpu"])
    d["apiVersion"] = "apps/v1beta1"
    report = validate_objects([d])
    assert report.errors and "no schema for Deployment in apps/v1beta1" in report.errors[0]


def test_custom_resources_are_skipped_not_passed():
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "resnet"}, "spec": {}}
    report = validate_objects([app])
    assert report.errors == [] and report.validated == 0
    assert report.skipped == ["argoproj.io/v1alpha1 Application/resnet"]
