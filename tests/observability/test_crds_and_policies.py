"""The new kinds against their vendored upstream CRDs, and the one-autoscaler-per-workload policy."""
import copy
import re

import pytest

from tools.check.policies import Overlay, run_policies
from tools.check.schema import validate_objects
from tools.observability import crds


def find(objects, kind):
    return next(o for o in objects if o["kind"] == kind)


def test_each_vendored_crd_names_its_source_commit():
    for name in crds.CRD_FILES:
        head = (crds.CRD_DIR / name).read_text().split("\n", 3)[:3]
        assert re.search(r"Source: github\.com/\S+ \S+\.yaml at commit [0-9a-f]{40}", " ".join(head)), name


def test_the_crds_cover_exactly_the_new_kinds():
    assert crds.kinds() == {("monitoring.coreos.com", "PodMonitor"), ("monitoring.coreos.com", "PrometheusRule"),
                            ("keda.sh", "ScaledObject")}


def test_the_built_overlays_are_valid_against_the_crds(built):
    for objects in built.values():
        mine = [o for o in objects if crds.covers(o)]
        assert mine and all(crds.validate(o) == [] for o in mine)


@pytest.mark.parametrize("kind,mutate,message", [
    ("PodMonitor", lambda o: o["spec"]["podMetricsEndpoints"][0].update(relabelling=[]),
     "Additional properties are not allowed ('relabelling' was unexpected)"),
    ("PodMonitor", lambda o: o["spec"]["podMetricsEndpoints"][0]["relabelings"][0].update(action="Rename"),
     "'Rename' is not one of"),
    ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].update(expr=None), "None is not valid under any of the given schemas"),
    ("ScaledObject", lambda o: o["spec"].update(minReplicas=1), "'minReplicas' was unexpected"),
    ("ScaledObject", lambda o: o["spec"].update(maxReplicaCount="4"), "'4' is not of type 'integer'"),
    ("ScaledObject", lambda o: o["spec"]["scaleTargetRef"].pop("name"), "'name' is a required property"),
])
def test_a_wrong_field_fails_the_schema_check(built, kind, mutate, message):
    objects = copy.deepcopy(built["gpu"])
    mutate(find(objects, kind))
    errors = validate_objects(objects).errors
    assert any(message in e and kind in e for e in errors), errors


def test_an_hpa_beside_the_scaled_object_breaks_the_policy(built, config):
    objects = copy.deepcopy(built["gpu"])
    hpa = copy.deepcopy(find(built["cpu"], "HorizontalPodAutoscaler"))
    hpa["spec"].update(minReplicas=1, maxReplicas=4)
    objects.append(hpa)
    problems = run_policies(Overlay("gpu", objects, config))["autoscaling"]
    assert any("exactly one may own its replica count" in p for p in problems), problems


def test_scaled_object_bounds_follow_model_yaml(built, config):
    objects = copy.deepcopy(built["gpu"])
    find(objects, "ScaledObject")["spec"]["maxReplicaCount"] = 40
    problems = run_policies(Overlay("gpu", objects, config))["autoscaling"]
    assert any("ScaledObject/tf-serving: replicas 2..40" in p for p in problems), problems


def test_an_hpa_where_model_yaml_wants_keda_breaks_the_policy(built, config):
    objects = [o for o in copy.deepcopy(built["gpu"]) if o["kind"] != "ScaledObject"]
    hpa = copy.deepcopy(find(built["cpu"], "HorizontalPodAutoscaler"))
    hpa["spec"].update(minReplicas=1, maxReplicas=4)
    objects.append(hpa)
    problems = run_policies(Overlay("gpu", objects, config))["autoscaling"]
    assert any("wants a ScaledObject, got HorizontalPodAutoscaler" in p for p in problems), problems


def test_the_disruption_policy_reads_the_scaled_objects_minimum(built, config):
    objects = copy.deepcopy(built["gpu"])
    pdb = find(objects, "PodDisruptionBudget")
    pdb["spec"] = {"minAvailable": 2, "selector": pdb["spec"]["selector"]}  # the gpu target's minimum is 2
    problems = run_policies(Overlay("gpu", objects, config))["disruption"]
    assert any("minAvailable 2 with minReplicas 2" in p for p in problems), problems
