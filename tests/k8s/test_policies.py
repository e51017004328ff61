"""Every policy holds on the built overlays, and each one fails on an object mutated to break it."""
from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal

import pytest

from tools.check.policies import POLICIES, Overlay, quantity, run_policies, split_image


def deployment(objects):
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tf-serving")


def pod(objects):
    return deployment(objects)["spec"]["template"]["spec"]


def serving(objects):
    return next(c for c in pod(objects)["containers"] if c["name"] == "tf-serving")


def init(objects):
    return next(c for c in pod(objects)["initContainers"] if c["name"] == "fetch-model")


def configmap(objects, prefix):
    return next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix + "-"))


def remove(objects, kind):
    objects[:] = [o for o in objects if o["kind"] != kind]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_every_policy_holds_on_the_built_overlays(built, config, overlay):
    violations = run_policies(Overlay(overlay, built[overlay], config))
    assert set(violations) == set(POLICIES)
    assert {name: v for name, v in violations.items() if v} == {}


# (policy, overlay, mutation of the built objects, text a violation must contain)
MUTATIONS = [
    ("pod-security", "cpu", lambda o: init(o)["securityContext"].update(allowPrivilegeEscalation=True),
     "container fetch-model: allowPrivilegeEscalation must be false"),
    ("pod-security", "cpu", lambda o: pod(o)["securityContext"].update(runAsUser=1000), "UID >= 10000"),
    ("pod-security", "cpu", lambda o: pod(o)["securityContext"].pop("runAsUser"), "explicit UID"),
    ("pod-security", "gpu", lambda o: serving(o)["securityContext"].update(runAsNonRoot=False),
     "runAsNonRoot must be true"),
    ("pod-security", "gpu", lambda o: pod(o)["securityContext"].pop("seccompProfile"), "RuntimeDefault"),
    ("pod-security", "cpu", lambda o: serving(o)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
     "capabilities.drop must include ALL"),
    ("pod-security", "cpu", lambda o: serving(o)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
     "capabilities.add"),
    ("pod-security", "cpu", lambda o: serving(o)["securityContext"].pop("readOnlyRootFilesystem"),
     "readOnlyRootFilesystem must be true"),
    ("pod-security", "cpu", lambda o: pod(o)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
     "hostPath is not allowed"),
    ("pod-security", "cpu", lambda o: pod(o).update(automountServiceAccountToken=True),
     "automountServiceAccountToken must be false"),
    ("pod-security", "cpu", lambda o: pod(o).update(hostNetwork=True), "hostNetwork must not be set"),
    ("probes", "cpu", lambda o: serving(o).update(livenessProbe=copy.deepcopy(serving(o)["readinessProbe"])),
     "livenessProbe must check something else"),
    ("probes", "gpu", lambda o: serving(o).pop("readinessProbe"), "no readinessProbe"),
    ("probes", "cpu", lambda o: serving(o).pop("livenessProbe"), "no livenessProbe"),
    ("probes", "cpu", lambda o: serving(o).pop("startupProbe"), "no startupProbe"),
    ("probes", "cpu", lambda o: serving(o)["startupProbe"].update(failureThreshold=3), "startupProbe allows 15 s"),
    ("probes", "cpu", lambda o: serving(o).update(
        readinessProbe={"httpGet": {"path": "/v1/models/resnet", "port": "http"}}), "model-ready.sh"),
    ("resources", "cpu", lambda o: init(o)["resources"]["limits"].pop("ephemeral-storage"),
     "fetch-model: needs requests and limits for ephemeral-storage"),
    ("resources", "gpu", lambda o: serving(o)["resources"]["requests"].update(memory="1Gi"),
     "memory requests (1Gi) must equal limits"),
    ("resources", "cpu", lambda o: serving(o)["resources"].update(
        requests={"cpu": "2", "memory": "4Gi", "ephemeral-storage": "4Gi"},
        limits={"cpu": "2", "memory": "4Gi", "ephemeral-storage": "4Gi"}), "cpu limit is 2"),
    ("resources", "cpu", lambda o: next(e for e in serving(o)["env"] if e["name"] == "TF_INTRA_OP_PARALLELISM").update(value="64"), "TF_INTRA_OP_PARALLELISM is 64"),
    ("gpu", "cpu", lambda o: serving(o)["resources"]["limits"].update({"nvidia.com/gpu": "1"}),
     "nvidia.com/gpu in the cpu overlay"),
    ("gpu", "gpu", lambda o: serving(o)["resources"].setdefault("requests", {}).update({"nvidia.com/gpu": "2"}),
     "nvidia.com/gpu requests (2) must equal limits (1)"),
    ("gpu", "gpu", lambda o: serving(o)["resources"]["limits"].pop("nvidia.com/gpu"), "nvidia.com/gpu limit is None"),
    ("gpu", "gpu", lambda o: pod(o).pop("tolerations"), "no toleration {'key': 'nvidia.com/gpu'"),
    # The generic platform selects no label: an added one (a node pool only some clusters have) is a violation.
    ("gpu", "gpu", lambda o: pod(o).update(nodeSelector={"nvidia.com/gpu.present": "true"}),
     "nodeSelector {'nvidia.com/gpu.present': 'true'}, model.yaml says {}"),
    ("gpu", "gpu", lambda o: serving(o)["args"].pop(), "args lack --per_process_gpu_memory_fraction"),
    ("cpu_math", "cpu", lambda o: next(e for e in serving(o)["env"] if e["name"] == "TF_ENABLE_ONEDNN_OPTS").update(
        value="0"), "TF_ENABLE_ONEDNN_OPTS is 0, model.yaml targets.cpu onednn: on means 1"),
    ("cpu_math", "cpu", lambda o: serving(o)["args"].append("--mixed_precision=bfloat16"),
     "args ['--mixed_precision=bfloat16'], model.yaml targets.cpu asks none"),
    ("cpu_math", "cpu", lambda o: serving(o)["env"].append({"name": "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", "value": "1"}),
     "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS is 1, model.yaml targets.cpu frozen_weights: false means unset"),
    ("cpu_math", "gpu", lambda o: serving(o)["args"].append("--mixed_precision=bfloat16"), "(a GPU target)"),
    ("layout", "cpu", lambda o: configmap(o, "tf-serving-model")["data"].update(
        MODEL_SOURCE=configmap(o, "tf-serving-model")["data"]["MODEL_SOURCE"].replace("channels_last",
                                                                                       "channels_first")),
     "channels_first in the cpu overlay"),
    ("layout", "gpu", lambda o: configmap(o, "tf-serving-model")["data"].update(MODEL_LAYOUT="channels_last"),
     "MODEL_LAYOUT is channels_last"),
    ("images", "cpu", lambda o: init(o).update(image="rclone/rclone:latest"), "uses the latest tag"),
    ("images", "cpu", lambda o: init(o).update(image="rclone/rclone"), "is not pinned"),
    # A tag no model.yaml pins (2.19.0-gpu is a real one a team may pin).
    ("images", "gpu", lambda o: serving(o).update(image="tensorflow/serving:0.0.1-gpu"),
     "image tensorflow/serving:0.0.1-gpu, model.yaml targets.gpu.image says"),
    ("autoscaling", "cpu", lambda o: deployment(o)["spec"].update(replicas=3), "sets replicas while"),
    ("autoscaling", "cpu", lambda o: remove(o, "HorizontalPodAutoscaler"),
     "no HorizontalPodAutoscaler or ScaledObject scales it"),
    ("autoscaling", "cpu", lambda o: next(x for x in o if x["kind"] == "HorizontalPodAutoscaler")["spec"].update(
        minReplicas=5), "replicas 5.."),
    ("disruption", "cpu", lambda o: next(x for x in o if x["kind"] == "PodDisruptionBudget")["spec"].update(
        maxUnavailable=0), "maxUnavailable 0 blocks every node drain"),
    ("disruption", "gpu", lambda o: next(x for x in o if x["kind"] == "PodDisruptionBudget").update(
        spec={"minAvailable": 2, "selector": pod_selector(o)}), "minAvailable 2 with minReplicas 2"),
    ("disruption", "cpu", lambda o: next(x for x in o if x["kind"] == "PodDisruptionBudget").update(
        spec={"minAvailable": "100%", "selector": pod_selector(o)}), "minAvailable 100%"),
    ("disruption", "cpu", lambda o: remove(o, "PodDisruptionBudget"), "no PodDisruptionBudget selects its pods"),
    ("rollout", "cpu", lambda o: deployment(o)["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
     "maxSurge/maxUnavailable 1/1, model.yaml targets.cpu.rollout says 1/0"),
    ("rollout", "gpu", lambda o: deployment(o)["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=2),
     "maxUnavailable 2 can take every pod down at minReplicas 2"),
    ("rollout", "gpu", lambda o: pod(o).pop("topologySpreadConstraints"), "no topologySpreadConstraints"),
    ("rollout", "gpu", lambda o: pod(o)["topologySpreadConstraints"][0].update(whenUnsatisfiable="DoNotSchedule"),
     "is DoNotSchedule, which can strand a scale-up"),
    ("rollout", "cpu", lambda o: serving(o).pop("lifecycle"), "no preStop hook"),
    ("rollout", "cpu", lambda o: pod(o).update(terminationGracePeriodSeconds=10), "leaves no time after the 20 s"),
    ("serving-config", "cpu", lambda o: configmap(o, "tf-serving-config")["data"].update(
        {"batching.config": "max_batch_size { value: 8 }\nnum_batch_threads { value: 4 }\n"}),
     "batching.config (8, 0, 4, 0, ())"),
    ("serving-config", "gpu", lambda o: configmap(o, "tf-serving-config")["data"].update(
        {"batching.config": "max_batch_sise { value: 8 }\n"}), "has no field named \"max_batch_sise\""),
    ("serving-config", "cpu", lambda o: deployment(o)["spec"]["template"]["metadata"]["annotations"].update(
        {"prometheus.io/path": "/metrics"}), "prometheus.io/path /metrics"),
    ("serving-config", "cpu", lambda o: serving(o)["args"].remove("--enable_batching=true"),
     "args lack --enable_batching=true"),
    ("pinned-model", "cpu", lambda o: configmap(o, "tf-serving-config")["data"].update(
        {"models.config": configmap(o, "tf-serving-config")["data"]["models.config"].replace("versions:",
                                                                                             "versions: 99\nversions:")}),
     "model.yaml pins"),
    ("pinned-model", "cpu", lambda o: configmap(o, "tf-serving-model")["data"].update(MODEL_VERSION="99"),
     "MODEL_VERSION is '99'"),
    ("pinned-model", "gpu", lambda o: configmap(o, "tf-serving-model")["data"].update(
        MODEL_DIGEST="sha256:" + "0" * 64), "MODEL_DIGEST is 'sha256:000"),
    ("pinned-model", "cpu", lambda o: deployment(o)["spec"]["template"]["metadata"]["annotations"].update(
        {"tf-serving-gitops/model-version": "0"}), "annotation tf-serving-gitops/model-version is '0'"),
    ("pinned-model", "cpu", lambda o: pod(o).pop("initContainers"), "no fetch-model init container"),
]


def pod_selector(objects):
    return {"matchLabels": deployment(objects)["spec"]["selector"]["matchLabels"]}


def test_every_policy_has_a_negative_test():
    assert {m[0] for m in MUTATIONS} == set(POLICIES)


@pytest.mark.parametrize("name, overlay, mutate, expected", MUTATIONS,
                         ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_a_mutated_object_breaks_the_policy(built, config, name, overlay, mutate, expected):
    objects = copy.deepcopy(built[overlay])
    mutate(objects)
    violations = POLICIES[name](Overlay(overlay, objects, config))
    assert any(expected in v for v in violations), violations


def test_a_digest_pinned_in_model_yaml_but_not_rendered_breaks_pinned_model(built, config):
    layout = config.targets["cpu"].layout
    other = next(d for d in ("sha256:" + "a" * 64, "sha256:" + "b" * 64) if d != config.model.digests.get(layout))
    pinned = dataclasses.replace(config, model=dataclasses.replace(config.model, digests={layout: other}))
    violations = POLICIES["pinned-model"](Overlay("cpu", built["cpu"], pinned))
    assert any("MODEL_DIGEST" in v for v in violations)
    assert any("tf-serving-gitops/model-digest" in v for v in violations)


def test_an_overlay_without_a_target_in_model_yaml_is_reported(built, config):
    assert POLICIES["layout"](Overlay("tpu", built["cpu"], config)) == ["overlay tpu: model.yaml has no target 'tpu'"]


@pytest.mark.parametrize("ref, parts", [
    ("tensorflow/serving:2.20.0-gpu", ("tensorflow/serving", "2.20.0-gpu", None)),
    ("tensorflow/serving", ("tensorflow/serving", None, None)),
    ("registry.example.com:5000/tf/serving", ("registry.example.com:5000/tf/serving", None, None)),
    ("rclone/rclone:1.75.1@sha256:" + "a" * 64, ("rclone/rclone", "1.75.1", "sha256:" + "a" * 64)),
])
def test_split_image(ref, parts):
    assert split_image(ref) == parts


@pytest.mark.parametrize("text, value", [
    ("4", Decimal(4)), (4, Decimal(4)), ("3500m", Decimal("3.5")), ("16Gi", Decimal(16 * 2**30)),
    ("4G", Decimal(4 * 10**9)), ("1e3", Decimal(1000)), ("0.5", Decimal("0.5")), ("four", None), (None, None),
])
def test_quantity(text, value):
    assert quantity(text) == value
