"""A canary target rendered, built and checked as `make render check` does: the Rollout, its Services and analyses,
valid against the vendored Argo Rollouts CRDs, wired to what scales it, every PromQL query parsed by promtool."""
from __future__ import annotations

import copy

import pytest
import yaml

from tests.observability.helpers import build_overlays, objects_of, one, require_binary
from tests.rollout.helpers import canary_data
from tools import argocd, paths
from tools.check import run_checks
from tools.check.policies import Overlay, run_policies
from tools.check.schema import validate_objects
from tools.config import load_config, parse_config
from tools.render import names
from tools.rollout import checks as rollout_checks
from tools.rollout import promql


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    """keda on / off -> (config, {target: objects}, repo), the gpu target a canary."""
    out = {}
    for keda in (True, False):
        built, repo = build_overlays(tmp_path_factory.mktemp(f"canary-keda-{keda}"), canary_data(keda=keda))
        out[keda] = (load_config(repo / paths.MODEL_YAML), built, repo)
    return out


def test_only_the_canary_target_gets_the_rollout_objects(canary):
    _, built, _ = canary[True]
    gpu = {(o["kind"], o["metadata"]["name"]) for o in built["gpu"]}
    assert {("Rollout", names.ROLLOUT), ("Service", names.CANARY_SERVICE), ("Service", names.STABLE_SERVICE),
            ("AnalysisTemplate", names.ANALYSIS_METRICS), ("AnalysisTemplate", names.ANALYSIS_GOLDEN_SET)} <= gpu
    assert not {o["kind"] for o in built["cpu"]} & {"Rollout", "AnalysisTemplate"}
    assert ("Service", names.CANARY_SERVICE) not in {(o["kind"], o["metadata"]["name"]) for o in built["cpu"]}


def test_the_rollout_follows_model_yaml(canary):
    config, built, _ = canary[True]
    spec = one(built["gpu"], "Rollout")["spec"]
    assert spec["workloadRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.DEPLOYMENT,
                                   "scaleDown": "progressively"}
    assert "replicas" not in spec and "template" not in spec and "selector" not in spec
    c = spec["strategy"]["canary"]
    assert (c["maxSurge"], c["maxUnavailable"]) == (0, 1)
    assert (c["canaryService"], c["stableService"]) == (names.CANARY_SERVICE, names.STABLE_SERVICE)
    hash_arg = [{"name": names.CANARY_HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]
    assert c["analysis"] == {"templates": [{"templateName": names.ANALYSIS_METRICS}], "startingStep": 1,
                             "args": hash_arg}
    assert c["steps"] == [{"setWeight": 50},
                          {"analysis": {"templates": [{"templateName": names.ANALYSIS_GOLDEN_SET}], "args": hash_arg}},
                          {"pause": {"duration": "10m"}}, {"setWeight": 75}, {"pause": {}}]


def test_the_metrics_template_carries_the_thresholds(canary):
    _, built, _ = canary[True]
    t = [o for o in objects_of(built["gpu"], "AnalysisTemplate") if o["metadata"]["name"] == names.ANALYSIS_METRICS][0]
    metrics = {m["name"]: m for m in t["spec"]["metrics"]}
    assert metrics["error-ratio"]["successCondition"].endswith("result[0] <= 0.02")
    assert metrics["p99-latency-ms"]["successCondition"].endswith("result[0] <= 800")
    assert {m["interval"] for m in metrics.values()} == {"2m"} and {m["failureLimit"] for m in metrics.values()} == {1}
    for m in metrics.values():
        assert m["provider"]["prometheus"]["address"] == "http://prometheus-operated.monitoring.svc:9090"
        assert 'rollouts_pod_template_hash="{{args.canary-hash}}"' in m["provider"]["prometheus"]["query"]


def test_the_golden_set_job_mounts_the_overlays_own_config_maps(canary):
    _, built, _ = canary[True]
    t = [o for o in objects_of(built["gpu"], "AnalysisTemplate") if o["metadata"]["name"] == names.ANALYSIS_GOLDEN_SET][0]
    pod = t["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    config_maps = {o["metadata"]["name"] for o in objects_of(built["gpu"], "ConfigMap")}
    # kustomize appended the content hash here as in the Deployment (the vendored rollout-transform config).
    used = {v["configMap"]["name"] for v in pod["volumes"]} | {e["configMapRef"]["name"] for e in pod["containers"][0]["envFrom"]}
    assert used <= config_maps and all(name.rsplit("-", 1)[0] in {"tf-serving-smoke-test", names.GOLDEN_SET_CONFIGMAP,
                                                                   names.MODEL_CONFIGMAP} for name in used)
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["SMOKE_URL"] == f"http://{names.CANARY_SERVICE}:{names.HTTP_PORT}"


@pytest.mark.parametrize("keda", [True, False])
def test_the_autoscaler_scales_the_rollout_and_every_check_holds(canary, keda):
    config, built, repo = canary[keda]
    kind = "ScaledObject" if keda else "HorizontalPodAutoscaler"
    assert one(built["gpu"], kind)["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                                                 "name": names.ROLLOUT}
    for target, objects in built.items():
        report = validate_objects(objects)
        assert report.errors == [] and not [s for s in report.skipped if "argoproj.io" in s]
        assert {k: v for k, v in run_policies(Overlay(target, objects, config)).items() if v} == {}
        assert rollout_checks.wiring_problems(objects, target == "gpu") == []
    assert argocd.check(repo, config, built) == []


def test_make_check_passes_on_the_canary_repository(canary):
    require_binary("promtool")
    _, _, repo = canary[True]
    results = run_checks(repo)
    assert [r for r in results if not r.passed] == []
    assert any(r.name.startswith("canary: k8s/overlays/gpu analysis queries") and r.detail == "2 queries" for r in results)


def test_an_autoscaler_left_on_the_deployment_fails_the_policy(canary):
    config, built, _ = canary[False]
    objects = copy.deepcopy(built["gpu"])
    one(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                         "name": names.DEPLOYMENT}
    problems = run_policies(Overlay("gpu", objects, config))["autoscaling"]
    assert any("through Rollout/tf-serving, which owns its pods" in p for p in problems), problems


def test_the_appproject_allows_the_rollout_kinds_only_with_a_canary_target(canary):
    _, _, repo = canary[True]
    def kinds(path):
        project = yaml.safe_load(path.read_text())
        return {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert {("argoproj.io", "Rollout"), ("argoproj.io", "AnalysisTemplate")} <= kinds(repo / paths.ARGOCD_DIR / "appproject.yaml")
    assert not {g for g, _ in kinds(paths.REPO_ROOT / paths.ARGOCD_DIR / "appproject.yaml")} & {"argoproj.io"}


TYPOS = {
    "Rollout": lambda o: o["spec"]["strategy"]["canary"].update(canaryServce=o["spec"]["strategy"]["canary"].pop("canaryService")),
    "AnalysisTemplate": lambda o: o["spec"]["metrics"][0].update(successCondtion="true"),
}


@pytest.mark.parametrize("kind", TYPOS)
def test_a_typo_in_a_field_fails_the_schema_check(canary, kind):
    _, built, _ = canary[True]
    objects = copy.deepcopy(built["gpu"])
    TYPOS[kind](objects_of(objects, kind)[0])
    errors = validate_objects(objects).errors
    assert any("vendored CRD" in e and ("canaryServce" in e or "successCondtion" in e) for e in errors), errors


def test_a_typo_in_the_rendered_rollout_fails_make_check(canary, tmp_path):
    import shutil

    _, _, repo = canary[True]
    copy_root = tmp_path / "repo"
    shutil.copytree(repo, copy_root)
    rollout = copy_root / paths.OVERLAYS_DIR / "gpu" / names.CANARY_COMPONENT / "rollout.yaml"
    rollout.write_text(rollout.read_text().replace("progressDeadlineAbort:", "progressDeadlineAbrot:"))
    failed = {r.name: r.detail for r in run_checks(copy_root) if not r.passed}
    assert any("progressDeadlineAbrot" in d for n, d in failed.items() if n.startswith("schema k8s/overlays/gpu")), failed


def test_the_queries_parse_and_name_only_tf_serving_series(canary):
    require_binary("promtool")
    _, built, _ = canary[True]
    problems, count = promql.problems(built["gpu"])
    assert (problems, count) == ([], 2)
    for _, _, query in promql.queries(built["gpu"]):
        metrics = {name for name, _ in promql._SELECTOR_RE.findall(promql.fill_args(query))}
        assert metrics and metrics <= set(promql.METRIC_LABELS)


BROKEN = {
    "metric typo": (":tensorflow:serving:request_count{", ":tensorflow:serving:request_cnt{",
                    ":tensorflow:serving:request_cnt is not a TF Serving metric"),
    "label typo": ('status!="OK"', 'stat!="OK"', "label stat is not on its series"),
    "syntax": ("sum by (le) (", "sum by (le) ((", "promtool"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_query_fails(canary, case):
    require_binary("promtool")
    old, new, message = BROKEN[case]
    _, built, _ = canary[True]
    objects = copy.deepcopy(built["gpu"])
    for t in objects_of(objects, "AnalysisTemplate"):
        for m in t["spec"]["metrics"]:
            prom = m["provider"].get("prometheus")
            if prom and old in prom["query"]:
                prom["query"] = prom["query"].replace(old, new, 1)
    problems, _ = promql.problems(objects)
    assert any(message in p for p in problems), problems
