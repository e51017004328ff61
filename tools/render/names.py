"""Names inside the manifests that the renderer, the checks and other tools agree on.

k8s/base/*.yaml spells the same names; tests/k8s and the policy checks fail if the two ever differ.
"""
from __future__ import annotations

APP_NAME = "tf-serving"
DEPLOYMENT = "tf-serving"
SERVICE = "tf-serving"
HPA = "tf-serving"
SERVICE_ACCOUNT = "tf-serving"  # issue 12: store.identity annotates it
SERVING_CONTAINER = "tf-serving"
FETCH_CONTAINER = "fetch-model"
GRPC_PORT = 8500
HTTP_PORT = 8501

# ConfigMaps (kustomize appends a content hash to each name).
CONFIG_CONFIGMAP = "tf-serving-config"  # models.config, batching.config, monitoring.config
MODEL_CONFIGMAP = "tf-serving-model"  # MODEL_* variables of the init step and the readiness probe
GOLDEN_SET_CONFIGMAP = "tf-serving-golden-set"  # the smoke test's images and expected answers (tools/goldenset)
MODEL_CONFIG_FILE = "models.config"
BATCHING_CONFIG_FILE = "batching.config"
CONFIG_MOUNT = "/etc/tf-serving"

# The init step writes <MODELS_ROOT>/<model name>/<version>; TF Serving's base_path is <MODELS_ROOT>/<name>.
MODELS_ROOT = "/models"
# A pvc:// store's claim is mounted read-only here in the init container.
STORE_MOUNT = "/store"

# Pod template annotations: what each pod serves (tools/status reads them).
ANNOTATION_PREFIX = "tf-serving-gitops/"
ANNOTATION_MODEL_NAME = ANNOTATION_PREFIX + "model-name"
ANNOTATION_MODEL_VERSION = ANNOTATION_PREFIX + "model-version"
ANNOTATION_MODEL_LAYOUT = ANNOTATION_PREFIX + "model-layout"
ANNOTATION_MODEL_DIGEST = ANNOTATION_PREFIX + "model-digest"
ANNOTATION_TARGET = ANNOTATION_PREFIX + "target"
UNPINNED_DIGEST = "unpinned"  # annotation value while model.yaml pins no digest for the layout

GPU_RESOURCE = "nvidia.com/gpu"

# Observability objects (tools/templates/overlay/observability/, docs/observability.md).
POD_MONITOR = "tf-serving"
PROMETHEUS_RULE = "tf-serving"
SCALED_OBJECT = "tf-serving"
DASHBOARD_CONFIGMAP = "tf-serving-dashboard"
DASHBOARD_FILE = "tf-serving.json"
OBSERVABILITY_COMPONENT = "observability"  # k8s/overlays/<target>/observability/: a kustomize Component

# Canary rollouts (issue 14: tools/templates/overlay/canary/, tools/rollout, docs/canary.md).
ROLLOUT = "tf-serving"  # the Argo Rollouts Rollout that takes over the Deployment (workloadRef)
CANARY_SERVICE = "tf-serving-canary"  # selects the canary pods only (the controller adds the hash selector)
STABLE_SERVICE = "tf-serving-stable"  # selects the stable pods only
ANALYSIS_METRICS = "tf-serving-canary-metrics"  # AnalysisTemplate: Prometheus error ratio and p99 latency
ANALYSIS_GOLDEN_SET = "tf-serving-canary-golden-set"  # AnalysisTemplate: the golden-set replay Job
CANARY_COMPONENT = "canary"  # k8s/overlays/<target>/canary/: a kustomize Component
CANARY_HASH_ARG = "canary-hash"  # the AnalysisTemplates' argument: the canary pods' rollouts-pod-template-hash
