"""Every metric and label name the PodMonitor, the alerts, the dashboard and KEDA use, with its upstream source.

TF Serving exports TensorFlow's monitoring metrics with every character outside [a-zA-Z0-9_] turned into ':'
(tensorflow/serving tensorflow_serving/util/prometheus_exporter.cc GetPrometheusMetricName), so
/tensorflow/serving/request_count is scraped as :tensorflow:serving:request_count. Histograms are written as
classic Prometheus histograms (_bucket with cumulative counts and le="+Inf" last, _sum, _count). No metric
carries the model version (tensorflow/serving issues #1959, #1970): the PodMonitor's relabeling adds it.
"""
from __future__ import annotations

import re

# tensorflow_serving/servables/tensorflow/util.cc: Counter<2> "/tensorflow/serving/request_count"
# {model_name, status}; status is error::Code_Name(status): "OK", "INVALID_ARGUMENT", ...
REQUEST_COUNT = ":tensorflow:serving:request_count"
# util.cc: Sampler<3> "/tensorflow/serving/request_latency" {model_name, API, entrypoint}, microseconds,
# Buckets::Exponential(10, 1.8, 33). Recorded for successful requests only (prediction_service_impl.cc,
# http_server.cc call RecordRequestLatency only when the status is OK).
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
REQUEST_LATENCY_BUCKETS = (10.0, 1.8, 33)
# tensorflow_serving/batching/batching_session.cc: Sampler<1> "/tensorflow/serving/batching_session/queuing_latency"
# {thread_pool_name}, microseconds, Buckets::Exponential(100, 1.2, 52). No model_name: one per server.
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
QUEUING_LATENCY_BUCKETS = (100.0, 1.2, 52)
# batching_session.cc: Counter<0> "/tensorflow/serving/batching_session/wrapped_run_count": one per batch run,
# so request_count / wrapped_run_count is the mean number of requests per batch.
WRAPPED_RUN_COUNT = ":tensorflow:serving:batching_session:wrapped_run_count"
# tensorflow/tensorflow tensorflow/cc/saved_model/loader.cc: Counter<2> "/tensorflow/cc/saved_model/load_attempt_count"
# {model_path, status}; status "success" or "fail"; model_path is the version directory (<base_path>/<version>).
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"

# kube-state-metrics docs/metrics/workload/deployment-metrics.md: {namespace, deployment}.
KSM_SPEC_REPLICAS = "kube_deployment_spec_replicas"
KSM_AVAILABLE_REPLICAS = "kube_deployment_status_replicas_available"

# NVIDIA/dcgm-exporter etc/default-counters.csv: gauges; GPU_UTIL in %, FB_* in MiB. With its Kubernetes
# mapping on, each series carries pod, namespace, container (internal/pkg/transformation/const.go); scraped
# through its chart's ServiceMonitor (deployment/values.yaml honorLabels: false) those become exported_pod,
# exported_namespace (observability.dcgm_pod_label).
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"

# Target labels the PodMonitor's relabeling adds to every series of a TF Serving pod, from its pod labels
# (set by the overlays' model_version_patch.yaml; `make bump` re-renders them). Names chosen not to collide
# with TF Serving's own labels (model_name, model, status, API, entrypoint, runtime, thread_pool_name): a
# collision would rename the scraped one to exported_<name>.
LABEL_MODEL = "served_model"
LABEL_VERSION = "served_version"
LABEL_LAYOUT = "served_layout"
LABEL_TARGET = "serving_target"
LABEL_POD_TEMPLATE_HASH = "pod_template_hash"
# The Deployment controller sets pod-template-hash on every pod of a ReplicaSet (kubernetes/kubernetes
# pkg/controller/deployment/sync.go, DefaultDeploymentUniqueLabelKey "pod-template-hash").
POD_TEMPLATE_HASH_POD_LABEL = "pod-template-hash"
# Issue 14: Argo Rollouts labels every pod of a Rollout's ReplicaSets with rollouts-pod-template-hash
# (argoproj/argo-rollouts pkg/apis/rollouts/v1alpha1/types.go DefaultRolloutUniqueLabelKey); the canary analysis
# selects the canary pods' series by it (tools/rollout/context.py).
ROLLOUTS_POD_TEMPLATE_HASH_POD_LABEL = "rollouts-pod-template-hash"
LABEL_ROLLOUTS_POD_TEMPLATE_HASH = "rollouts_pod_template_hash"


def exponential_buckets(scale: float, growth: float, count: int) -> list[float]:
    """TensorFlow's Buckets::Exponential: bound = scale, then bound *= growth, `count` times (xla/tsl/lib/monitoring/
    sampler.cc ComputeBucketLimits); the histogram adds DBL_MAX, exported as le="+Inf"."""
    bounds, bound = [], scale
    for _ in range(count):
        bounds.append(bound)
        bound *= growth
    return bounds


def le_text(bound: float) -> str:
    """A bucket bound as TF Serving writes it: absl::StrCat(double), i.e. printf %g with 6 significant digits."""
    return "%.6g" % bound


def le_matcher(bound: float) -> str:
    """A PromQL raw-string regex (backticks) for that le value. Prometheus 3 stores a classic histogram's le as a
    canonical float ("708235" -> "708235.0"), Prometheus 2 as scraped: match both."""
    text = le_text(bound)
    forms = [text] if ("e" in text or "." in text) else [text, f"{text}.0"]
    return "`" + "|".join(re.escape(f) for f in forms) + "`"


def bucket_at_least(micros: float, buckets: tuple[float, float, int]) -> float:
    """The smallest bucket bound >= micros (an objective can only be measured at a bucket bound)."""
    for bound in exponential_buckets(*buckets):
        if bound >= micros:
            return bound
    raise ValueError(f"{micros} us is beyond the largest bucket")
