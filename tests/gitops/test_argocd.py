"""The rendered Argo CD objects: schema of the fields used (typos fail), the settings they promise, and
the smoke-test Job as each overlay builds it."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tools import argocd, kustomize, paths
from tools.argocd import schema
from tools.config import load_config, load_yaml, parse_config
from tools.render import names, render_files

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / paths.MODEL_YAML)


@pytest.fixture(scope="module")
def built(config):
    return {target: kustomize.build(REPO / paths.OVERLAYS_DIR / target) for target in config.targets}


@pytest.fixture(scope="module")
def objects():
    return argocd.load_objects(REPO)


def one(objects, kind):
    """A copy of the first object of `kind` (the Applications are one per target)."""
    return copy.deepcopy(next(o for _, o in objects if o["kind"] == kind))


def test_committed_objects_are_what_render_makes(config):
    rendered = {rel: text for rel, text in render_files(config, REPO).items() if rel.startswith(paths.ARGOCD_DIR)}
    on_disk = {p.relative_to(REPO).as_posix(): p.read_text()
               for p in (REPO / paths.ARGOCD_DIR).rglob("*") if p.is_file()}
    assert rendered == on_disk


def test_every_object_and_setting_passes(config, built):
    assert argocd.check(REPO, config, built) == []


def test_kustomize_builds_the_project_and_the_applicationset(config):
    objs = kustomize.build(REPO / paths.ARGOCD_DIR)
    assert sorted((o["kind"], o["metadata"]["name"], o["metadata"]["namespace"]) for o in objs) == [
        ("AppProject", config.model.name, config.deploy.argocd_namespace),
        ("ApplicationSet", config.model.name, config.deploy.argocd_namespace),
    ]


def test_plain_applications_one_per_target_selectable_by_label(objects, config):
    apps = [o for _, o in objects if o["kind"] == "Application"]
    assert {a["metadata"]["labels"][f"{names.ANNOTATION_PREFIX}target"]: a["spec"]["source"]["path"] for a in apps} \
        == {t: f"{paths.OVERLAYS_DIR}/{t}" for t in config.targets}


@pytest.mark.parametrize("kind, path, wrong", [
    ("Application", ("spec", "syncPolicy", "automated", "selfHeal"), "selfheal"),
    ("Application", ("spec", "syncPolicy", "retry", "backoff"), "backOff"),
    ("ApplicationSet", ("spec", "syncPolicy", "applicationsSync"), "applicationSync"),
    ("ApplicationSet", ("spec", "syncPolicy", "preserveResourcesOnDeletion"), "preserveResourceOnDeletion"),
    ("ApplicationSet", ("spec", "template", "spec", "syncPolicy", "automated", "prune"), "purne"),
    ("ApplicationSet", ("spec", "generators", 0, "clusters", "selector"), "labelSelector"),
    ("AppProject", ("spec", "namespaceResourceWhitelist"), "namespaceResourceWhiteList"),
    ("AppProject", ("metadata", "finalizers"), "finalizer"),
])
def test_a_misspelled_field_fails_the_schema(objects, kind, path, wrong):
    obj = one(objects, kind)
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[wrong] = parent.pop(path[-1])
    problems = argocd.schema_problems(obj)
    assert any(f"'{wrong}' was unexpected" in p for p in problems), problems


@pytest.mark.parametrize("option", ["PrunLast=true", "CreateNamespace=True", "PruneLast"])
def test_a_misspelled_sync_option_fails_the_schema(objects, option):
    app = one(objects, "Application")
    app["spec"]["syncPolicy"]["syncOptions"][1] = option
    assert any(f"'{option}' is not one of" in p for p in argocd.schema_problems(app))


def test_wrong_types_fail_the_schema(objects):
    app = one(objects, "Application")
    app["spec"]["syncPolicy"]["retry"]["limit"] = "5"
    app["spec"]["syncPolicy"]["retry"]["backoff"]["duration"] = "30 seconds"
    problems = "\n".join(argocd.schema_problems(app))
    assert "retry.limit: '5' is not of type 'integer'" in problems
    assert "backoff.duration: '30 seconds' does not match" in problems


def test_the_schema_is_the_upstream_api_version_and_kinds():
    for kind, sch in schema.SCHEMAS.items():
        assert sch["properties"]["kind"] == {"const": kind}
        assert sch["properties"]["apiVersion"] == {"const": "argoproj.io/v1alpha1"}


@pytest.mark.parametrize("change, message", [
    (lambda s: s["syncPolicy"]["automated"].update(prune=False), "automated.prune must be true"),
    (lambda s: s["syncPolicy"]["automated"].pop("selfHeal"), "automated.selfHeal must be true"),
    (lambda s: s["syncPolicy"]["automated"].update(allowEmpty=True), "automated.allowEmpty must be false"),
    (lambda s: s["syncPolicy"]["syncOptions"].remove("PruneLast=true"), "must include PruneLast=true"),
    (lambda s: s["syncPolicy"]["syncOptions"].remove("CreateNamespace=true"), "must include CreateNamespace=true"),
    (lambda s: s["syncPolicy"]["retry"].update(limit=-1), "retry.limit must be 1..10 (bounded), got -1"),
    (lambda s: s["syncPolicy"]["retry"].pop("backoff"), "retry.backoff needs duration, maxDuration"),
    (lambda s: s["source"].update(repoURL="https://github.com/else/where.git"), "source.repoURL must be"),
    (lambda s: s["destination"].update(namespace="elsewhere"), "destination.namespace must be"),
    (lambda s: s.update(project="elsewhere"), "spec.project must be {project!r}"),
])
def test_application_settings(objects, config, change, message):
    project = config.model.name  # the AppProject is named after the model
    app = one(objects, "Application")
    assert argocd.application_problems("Application/x", app["metadata"], app["spec"], config, project) == []
    change(app["spec"])
    assert any(message.format(project=project) in p
               for p in argocd.application_problems("Application/x", app["metadata"], app["spec"], config, project))


def test_application_without_the_finalizer(objects, config):
    app = one(objects, "Application")
    app["metadata"]["finalizers"] = []
    assert "metadata.finalizers must include resources-finalizer" in \
        " ".join(argocd.application_problems("A", app["metadata"], app["spec"], config, config.model.name))


# (change of the ApplicationSet, given deploy.gpu_cluster_label's key and value; the problem it must cause, with
# GPU_LABELS standing for the labels of a cluster that carries that label)
@pytest.mark.parametrize("change, message", [
    (lambda a, k, v: a["spec"]["syncPolicy"].update(applicationsSync="sync"),
     "applicationsSync must be one of create-only"),
    (lambda a, k, v: a["spec"]["syncPolicy"].pop("applicationsSync"), "applicationsSync must be one of create-only"),
    (lambda a, k, v: a["metadata"].pop("finalizers"), "keeps the Applications when the ApplicationSet is deleted"),
    (lambda a, k, v: a["spec"].pop("goTemplateOptions"), "missingkey=error is required"),
    (lambda a, k, v: a["spec"]["template"]["spec"]["syncPolicy"]["automated"].update(selfHeal=False),
     "template: syncPolicy.automated.selfHeal must be true"),
    (lambda a, k, v: a["spec"]["generators"][1]["clusters"]["selector"].update(matchLabels={k: f"{v}-other"}),
     "a cluster labelled GPU_LABELS gets no overlay; expected gpu"),
    (lambda a, k, v: a["spec"]["generators"][0]["clusters"].update(selector={}),
     "a cluster labelled GPU_LABELS gets cpu and gpu"),
    (lambda a, k, v: a["spec"]["generators"].pop(), "one cluster generator per target"),
])
def test_applicationset_settings(objects, config, change, message):
    key, value = config.deploy.gpu_cluster_label
    appset = one(objects, "ApplicationSet")
    assert argocd.applicationset_problems(appset, config, config.model.name) == []
    change(appset, key, value)
    problems = argocd.applicationset_problems(appset, config, config.model.name)
    assert any(message.replace("GPU_LABELS", str({key: value})) in p for p in problems), problems


def test_selectors_send_every_cluster_to_one_overlay(objects, config):
    generators = [g["clusters"] for g in one(objects, "ApplicationSet")["spec"]["generators"]]
    key, value = config.deploy.gpu_cluster_label

    def overlays(labels):
        return [g["values"]["target"] for g in generators if argocd.selector_matches(g["selector"], labels)]

    assert overlays({key: value, "region": "eu"}) == ["gpu"]
    assert overlays({}) == ["cpu"]
    assert overlays({key: "none"}) == ["cpu"]


def test_a_second_cpu_target_is_flagged_as_ambiguous(config):
    data = load_yaml(REPO / paths.MODEL_YAML)
    data["targets"]["cpu-large"] = copy.deepcopy(data["targets"]["cpu"])
    two = parse_config(data, base=REPO)
    rendered = render_files(two, REPO)[f"{paths.ARGOCD_DIR}/applicationset.yaml"]
    problems = argocd.applicationset_problems(yaml.safe_load(rendered), two, two.model.name)
    assert any("a cluster labelled with no labels gets cpu and cpu-large" in p for p in problems), problems


def test_project_whitelists_exactly_the_kinds_the_overlays_deploy(objects, config, built):
    kinds = argocd.overlay_kinds(built)
    assert kinds["__cluster__"] == {("", "Namespace")}
    project = one(objects, "AppProject")
    assert argocd.appproject_problems(project, config, kinds) == []
    project["spec"]["namespaceResourceWhitelist"].pop()
    project["spec"]["namespaceResourceWhitelist"].append({"group": "", "kind": "Secret"})
    [problem] = argocd.appproject_problems(project, config, kinds)
    assert "missing policy/PodDisruptionBudget; not deployed core/Secret" in problem


def test_project_source_and_destination_are_narrow(objects, config, built):
    project = one(objects, "AppProject")
    project["spec"]["sourceRepos"].append("*")
    project["spec"]["destinations"].append({"server": "*", "namespace": "*"})
    project["spec"]["clusterResourceWhitelist"][0].pop("name")
    text = " ".join(argocd.appproject_problems(project, config, argocd.overlay_kinds(built)))
    namespace = config.deploy.namespace
    assert "sourceRepos must be exactly" in text and f"destinations must allow only namespace {namespace}" in text
    assert f"limited to name {namespace}" in text


def job_of(objs):
    [job] = [o for o in objs if o["kind"] == "Job"]
    return job


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_smoke_test_job_in_each_overlay(built, config, target):
    objs = built[target]
    job = job_of(objs)
    meta = job["metadata"]
    assert meta["annotations"]["argocd.argoproj.io/hook"] == "PostSync"
    assert "BeforeHookCreation" in meta["annotations"]["argocd.argoproj.io/hook-delete-policy"]
    assert meta["namespace"] == config.deploy.namespace
    spec = job["spec"]
    assert spec["backoffLimit"] <= 2 and 0 < spec["activeDeadlineSeconds"] <= 900
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    # restricted Pod Security Standard
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
    image, _, tag = container["image"].partition(":")
    assert image == "python" and tag.count(".") == 2  # a release tag, not a moving one
    # The URL reaches the Service's REST port.
    env = {e["name"]: e.get("value") for e in container["env"]}
    [service] = [o for o in objs if o["kind"] == "Service"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert env["SMOKE_URL"] == f"http://{service['metadata']['name']}:{ports['http']}"
    # The pinned name and version come from the overlay's model ConfigMap (its generated name).
    [ref] = container["envFrom"]
    [model_cm] = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["configMapRef"]["name"]]
    assert model_cm["data"]["MODEL_NAME"] == config.model.name
    assert model_cm["data"]["MODEL_VERSION"] == str(config.model.version)
    assert model_cm["data"]["MODEL_TOP_K"] == str(config.model.top_k)
    # The script it runs is the tested one.
    [volume] = [v for v in pod["volumes"] if v["name"] == "script"]  # the golden set: tests/goldenset
    [script_cm] = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"]]
    assert script_cm["data"]["smoke_test.py"] == (REPO / "k8s/components/smoke-test/smoke_test.py").read_text()
    # It must not count as a serving pod.
    selector = service["spec"]["selector"]
    labels = spec["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in selector.items())


# --- issue 12: the supported Argo CD range, checked against each release's own CRDs (tools/argocd/crds.py) ---
from tools.argocd import crds  # noqa: E402

OLD_CRDS = Path(__file__).resolve().parent / "fixtures" / "argocd-crds"  # v3.2.0: below the supported range


def test_the_supported_range_is_3_3_to_3_5_with_vendored_sources():
    assert crds.SUPPORTED == ("v3.3.0", "v3.5.1")
    for release in crds.SUPPORTED:
        data = crds.load(release)
        assert data["release"] == release and len(data["commit"]) == 40 and "argoproj/argo-cd" in data["_source"]
        assert set(data["kinds"]) == {"Application", "ApplicationSet", "AppProject"}


@pytest.mark.parametrize("release", crds.SUPPORTED)
def test_every_object_is_valid_for_the_oldest_and_newest_release(objects, release):
    assert [p for _, obj in objects for p in crds.crd_problems(obj, release)] == []


def test_3_2_would_silently_drop_the_namespace_name_limit(objects):
    problems = [p for _, obj in objects for p in crds.crd_problems(obj, "v3.2.0", OLD_CRDS)]
    assert problems == ["Argo CD v3.2.0: AppProject/resnet: spec.clusterResourceWhitelist[0].name: not in this "
                        "release's CRD (the API server would drop it silently)"]


def test_a_wrong_type_and_an_unknown_field_are_reported(objects):
    app = one(objects, "Application")
    app["spec"]["syncPolicy"]["retry"]["limit"] = "five"
    app["spec"]["syncPolicy"]["retry"]["refrsh"] = True
    problems = crds.crd_problems(app, "v3.5.1")
    assert any("spec.syncPolicy.retry.limit: 'five' is not of type 'integer'" in p for p in problems), problems
    assert any("spec.syncPolicy.retry.refrsh: not in this release's CRD" in p for p in problems), problems
