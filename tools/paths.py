"""Every file and folder name the tools and the exporter read or write, in one place."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_YAML = "model.yaml"

BUILD_DIR = "build"
MODELS_DIR = f"{BUILD_DIR}/models"
REPORTS_DIR = f"{BUILD_DIR}/reports"
BENCH_DIR = f"{BUILD_DIR}/bench"
# `make bench` writes these into BENCH_DIR (or --out); `tools profile` writes its two into PROFILE_DIR.
BENCH_REPORT_MD = "report.md"
BENCH_REPORT_JSON = "report.json"
BENCH_THROUGHPUT_PNG = "throughput.png"
BENCH_LARGE_INPUTS_PNG = "large_inputs.png"
BENCH_COLD_START_PNG = "cold_start.png"
# issue 16: the oneDNN comparison's plot, and where `make bench` copies every plot for docs/client-and-bench.md
BENCH_ONEDNN_PNG = "onednn.png"
BENCH_DOCS_DIR = "docs/bench"
PROFILE_DIR = f"{BUILD_DIR}/profile"
PROFILE_CSV = "profile.csv"
PROFILE_PNG = "profile.png"

K8S_DIR = "k8s"
BASE_DIR = f"{K8S_DIR}/base"
OVERLAYS_DIR = f"{K8S_DIR}/overlays"
COMPONENTS_DIR = f"{K8S_DIR}/components"
ARGOCD_DIR = f"{K8S_DIR}/argocd"
TEMPLATES_DIR = "tools/templates"
# `make render`: tools/templates/<kind>/**/*.j2 -> its output folder (overlay: once per target).
BASE_TEMPLATES_DIR = f"{TEMPLATES_DIR}/base"
OVERLAY_TEMPLATES_DIR = f"{TEMPLATES_DIR}/overlay"
ARGOCD_TEMPLATES_DIR = f"{TEMPLATES_DIR}/argocd"
TEMPLATE_SUFFIX = ".j2"
KUSTOMIZATION_FILE = "kustomization.yaml"
# Built overlays, one file per object: tests/k8s/golden/<overlay>/<kind>-<name>.yaml
GOLDEN_DIR = "tests/k8s/golden"

LAYOUTS = ("channels_last", "channels_first")

# Inside one exported version directory: <models>/<name>/<layout>/<version>/
SAVED_MODEL_PB = "saved_model.pb"
VARIABLES_DIR = "variables"
ASSETS_DIR = "assets"
ASSETS_EXTRA_DIR = "assets.extra"
LABELS_FILE = "labels.txt"  # inside assets/
WARMUP_FILE = "tf_serving_warmup_requests"  # inside assets.extra/ (TF Serving's fixed name)
EXPORT_INFO_FILE = "export_info.json"  # inside assets.extra/
# `sha256sum -c` format, relative paths, every file but itself. Written last: a version without it is
# incomplete. Its own sha256 is the version's digest, pinned in model.yaml.
DIGEST_FILE = "SHA256SUMS"
# Temporary directories are siblings of the version directory, so the final rename is atomic.
TMP_PREFIX = ".tmp-"

SERVING_SIGNATURE = "serving_default"
PREDICT_ALIAS = "predict"
INPUT_KEY = "images"
OUTPUT_CLASSES = "classes"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_LABELS = "labels"


def version_dir(models_dir: Path, name: str, layout: str, version: int) -> Path:
    return Path(models_dir) / name / layout / str(version)


def layout_dir(models_dir: Path, name: str, layout: str) -> Path:
    return Path(models_dir) / name / layout


def validation_report(reports_dir: Path, name: str, version: int, suffix: str) -> Path:
    """`suffix` is "json" or "md"."""
    return Path(reports_dir) / f"validate-{name}-v{version}.{suffix}"


def store_version_uri(store_uri: str, name: str, layout: str, version: int) -> str:
    """Where a version lives in the model store: the same <name>/<layout>/<version>/ tree as build/models."""
    return f"{store_uri.rstrip('/')}/{name}/{layout}/{version}"

# Observability (tools/observability): the dashboard preview `make dashboard-preview` draws for the docs.
DASHBOARD_PREVIEW_PNG = "docs/observability-dashboard.png"
# ---- the golden set (tools/goldenset, issue 11) -------------------------------------------------------------
# In each overlay, k8s/overlays/<target>/golden-set/: the answers that target must serve, and the images.
# Both become the overlay's golden-set ConfigMap, which the PostSync smoke test replays.
GOLDEN_SET_DIR = "golden-set"
GOLDEN_EXPECTED_FILE = "expected.json"
GOLDEN_IMAGES_FILE = "images.json"

# --- Source files (issue 10): the model file or weights file an export was made from, content-addressed. ---
# `make export` keeps every source file it used in SOURCES_DIR (and fetches a pinned one from the store into it);
# `make publish` uploads it once to <store>/<name>/sources/; model.yaml pins its sha256 (model.source.sha256).
SOURCES_DIR = f"{BUILD_DIR}/sources"
STORE_SOURCES_DIR = "sources"


def source_file_name(sha256: str, suffix: str) -> str:
    """`sha256-<hex><suffix>`, suffix like ".keras" or ".h5"."""
    return f"sha256-{sha256}{suffix}"


def source_cache_file(root: Path, sha256: str, suffix: str) -> Path:
    return Path(root) / SOURCES_DIR / source_file_name(sha256, suffix)


def store_source_uri(store_uri: str, name: str, sha256: str, suffix: str) -> str:
    """Where a source file lives in the model store: <store>/<name>/sources/sha256-<hex><suffix>."""
    return f"{store_uri.rstrip('/')}/{name}/{STORE_SOURCES_DIR}/{source_file_name(sha256, suffix)}"
