"""Load and validate model.yaml, the single source of truth.

`load_config(path)` returns a frozen `Config`; any bad value raises `ConfigError` whose message names the
file and the key path (`model.yaml: targets.gpu.gpus: must be at least 1 for an nvidia target, got 0`).
Unknown keys are errors too, so a misspelled key never silently falls back to a default.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from tools import paths
from tools.errors import UserError
from tools.onednn import ASSUME_FROZEN_ENV
from tools.onednn import ENV as ONEDNN_ENV

ARCHITECTURES = ("ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2")
PREPROCESSING_MODES = ("auto", "caffe", "tf", "torch", "none")
ACCELERATORS = ("none", "nvidia")
STORE_SCHEMES = ("gs", "s3", "az", "pvc", "file")
# Schemes a pod's init container can fetch from; file:// only makes sense on this machine.
CLUSTER_STORE_SCHEMES = ("gs", "s3", "az", "pvc")
MODEL_FILE_SUFFIXES = (".keras", ".h5")
# Upper bound of model.max_image_pixels and --max-image-pixels (issue 13). libjpeg and GIF cap a side at 65535,
# so no decodable image has more than ~4.3e9 pixels; 1e9 (3 GB of decoded RGB for one image) is already more
# than a serving pod should hold for one request, and keeps every product in the graph far below int64.
MAX_IMAGE_PIXELS = 1_000_000_000
# Upper bounds of the per-request bounds model.max_request_pixels / max_request_bytes (issue 13). 64 images at
# the largest image limit, and 2 GiB: TF Serving's gRPC server takes messages up to 2^31 - 1 bytes
# (tensorflow/serving tensorflow_serving/model_servers/server.cc: SetMaxMessageSize(tensorflow::kint32max)), so
# no request can carry more. Both keep the batch totals in the graph (export/preprocess.py) far below int64.
MAX_REQUEST_PIXELS = 64 * MAX_IMAGE_PIXELS
MAX_REQUEST_BYTES = 2 ** 31 - 1
# Their defaults, from the memory of the smallest pod (targets.cpu: 4 GiB, num_batch_threads 4); the arithmetic
# is in model.yaml's comment and docs/hostile-input.md#memory-per-request.
DEFAULT_MAX_REQUEST_PIXELS = 160_000_000
DEFAULT_MAX_REQUEST_BYTES = 64 * 2 ** 20

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_IMAGE_REPO_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_SHA256_HEX_RE = re.compile(r"^[a-f0-9]{64}$")
_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_CPU_RE = re.compile(r"^[0-9]+m$")
_LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class ConfigError(UserError):
    def __init__(self, file: str, key_path: str, message: str):
        self.file, self.key_path = file, key_path
        super().__init__(f"{file}: {key_path}: {message}" if key_path else f"{file}: {message}")


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str
    digest: str | None = None

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    @property
    def serving_version(self) -> tuple[int, int, int] | None:
        """The TF Serving release in the tag (`2.20.0-gpu` -> (2, 20, 0)), None when the tag has none."""
        m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", self.tag)
        return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


@dataclass(frozen=True)
class Resources:
    cpu: str  # a Kubernetes quantity: "4" or "3500m"
    memory: str
    ephemeral_storage: str

    @property
    def cpu_cores(self) -> int:
        """Whole cores the pod may use: TF Serving's thread pools are sized from this, not the host."""
        millis = int(self.cpu[:-1]) if self.cpu.endswith("m") else round(float(self.cpu) * 1000)
        return max(1, math.ceil(millis / 1000))


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    # --- serving-signal autoscaling (issue 15): see AUTOSCALING_METRICS below ---
    metric: str = "cpu"
    target_requests_per_second: float = 20.0  # per pod, for metric "requests"
    target_queue_latency_ms: float = 20.0  # mean batching queue wait, for metric "queue_latency"


@dataclass(frozen=True)
class Batching:
    max_batch_size: int
    batch_timeout_micros: int
    num_batch_threads: int
    max_enqueued_batches: int
    allowed_batch_sizes: tuple[int, ...] = ()

    def warmup_batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes the server will run: the allowed sizes, else powers of two up to the maximum."""
        if self.allowed_batch_sizes:
            return self.allowed_batch_sizes
        sizes, n = [], 1
        while n < self.max_batch_size:
            sizes.append(n)
            n *= 2
        sizes.append(self.max_batch_size)
        return tuple(sizes)


@dataclass(frozen=True)
class Target:
    name: str
    accelerator: str
    layout: str
    image: ImageRef
    resources: Resources
    autoscaling: Autoscaling
    batching: Batching
    gpus: int = 0
    gpu_memory_fraction: float | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    # --- issue 12: GPU platform, explicit tolerations, rollout (read by _read_deployment_settings) ---
    platform: str = "generic"
    tolerations: tuple["Toleration", ...] = ()
    rollout: "Rollout | None" = None

    golden_tolerance: "GoldenTolerance | None" = None  # None: the accelerator's default (golden_tolerance_for)
    cpu_math: "CpuMath | None" = None  # issue 16: oneDNN and fp32 math of a CPU target (None on GPU targets)

    @property
    def scheduling(self) -> "GpuScheduling":
        """Node selector, required label keys and tolerations of the pod: the platform's, then model.yaml's."""
        return gpu_scheduling(self)

    @property
    def is_gpu(self) -> bool:
        return self.accelerator != "none"


@dataclass(frozen=True)
class Source:
    architecture: str
    weights: Path | None
    seed: int
    classes: int
    model_file: Path | None
    # sha256 (64 hex) of the model file or weights file that model.version was exported from; written by
    # `make bump`, checked by `make export` and `make verify-digests` (issue 10). None: nothing pinned.
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: int
    source: Source
    labels: Path | None
    preprocessing: str
    top_k: int
    max_image_pixels: int
    jpeg_fast_downscale: bool
    digests: dict[str, str]
    # A folder with one subfolder per class (named as in the labels file), images inside: validation measures
    # top-1 accuracy on them (issue 10), and the golden set (issue 11) takes its reference images from it.
    samples_dir: Path | None = None
    # issue 13: turn JPEGs upright by their EXIF orientation inside the graph (export/exif.py).
    exif_orientation: bool = True
    # Fold inference batch normalization into the layer before it (export/fold.py): same answers, less work.
    # True keeps the shift of a normalization before a residual Add apart (fast on every CPU); FOLD_COMPLETE folds
    # it too (faster on AVX-512 CPUs with oneDNN, slower at batch 1 on AVX2-only ones); False: as trained.
    fold_batch_norms: bool | str = True
    # issue 13: what one Session::Run may hold in all (a request, or the batch TF Serving merged it into):
    # declared pixels and encoded bytes, checked in the graph before any image is decoded.
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @property
    def preprocessing_mode(self) -> str:
        """`auto` resolved: Keras applications' ResNet expects caffe, ResNetV2 expects tf."""
        if self.preprocessing != "auto":
            return self.preprocessing
        if self.source.model_file is not None:
            return "none"
        return "tf" if self.source.architecture.endswith("V2") else "caffe"


@dataclass(frozen=True)
class Store:
    uri: str
    publish_uri: str | None
    identity: "StoreIdentity | None" = None  # issue 12: workload identity of the pods that fetch
    azure_account: str | None = None  # the storage account of az:// URIs (uri and publish_uri)

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def upload_uri(self) -> str:
        return self.publish_uri or self.uri


@dataclass(frozen=True)
class Deploy:
    namespace: str
    repo_url: str
    revision: str
    argocd_namespace: str
    gpu_cluster_label: tuple[str, str]


@dataclass(frozen=True)
class Config:
    model: ModelSettings
    store: Store
    deploy: Deploy
    targets: dict[str, Target]
    path: Path
    images: "Images | None" = None  # issue 12: digest pins of the images model.yaml does not otherwise name
    observability: "Observability" = None  # type: ignore[assignment]  # set by parse_config

    def targets_for_layout(self, layout: str) -> list[Target]:
        return [t for t in self.targets.values() if t.layout == layout]

    def warmup_batch_sizes(self, layout: str) -> tuple[int, ...]:
        """Every batch size any target serving this layout may run (TF Serving caps warmup at 1000 records)."""
        sizes = sorted({s for t in self.targets_for_layout(layout) for s in t.batching.warmup_batch_sizes()})
        return tuple(sizes) or (1,)


class _Node:
    """A mapping being read at one key path; every read is checked and every unread key is an error."""

    def __init__(self, data: Any, path: str, file: str, base: Path):
        self.path, self.file, self.base = path, file, base
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {_describe(data)}")
        self.data, self.seen = data, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, message: str, key: str | None = None):
        raise ConfigError(self.file, self.key(key) if key else self.path, message)

    def raw(self, name: str, default: Any = ..., ) -> Any:
        self.seen.add(name)
        if name in self.data:
            return self.data[name]
        if default is ...:
            self.fail("is required" + self._misspelled(name), name)
        return default

    def _misspelled(self, name: str) -> str:
        """`; found unknown key 'memroy' (misspelled?)` when a key close to the missing one is present."""
        import difflib

        close = difflib.get_close_matches(name, [str(k) for k in self.data if k not in self.seen], n=1, cutoff=0.6)
        return f"; found unknown key {close[0]!r} here (misspelled?)" if close else ""

    def child(self, name: str, default: Any = ...) -> "_Node":
        return _Node(self.raw(name, default), self.key(name), self.file, self.base)

    def int(self, name: str, default: Any = ..., minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"must be an integer, got {_describe(value)}", name)
        if minimum is not None and value < minimum:
            self.fail(f"must be at least {minimum}, got {value}", name)
        if maximum is not None and value > maximum:
            self.fail(f"must be at most {maximum}, got {value}", name)
        return value

    def float(self, name: str, default: Any = ..., low: float = 0.0, high: float = 1.0) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"must be a number, got {_describe(value)}", name)
        if not low < value <= high:
            self.fail(f"must be in ({low}, {high}], got {value}", name)
        return float(value)

    def bool(self, name: str, default: Any = ...) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            self.fail(f"must be true or false, got {_describe(value)}", name)
        return value

    def str(self, name: str, default: Any = ..., choices: tuple[str, ...] | None = None,
            pattern: re.Pattern | None = None, what: str = "") -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value:
            self.fail(f"must be a non-empty string, got {_describe(value)}", name)
        if choices and value not in choices:
            self.fail(f"must be one of {', '.join(choices)}; got {value!r}", name)
        if pattern and not pattern.match(value):
            self.fail(f"{value!r} is not a valid {what or 'value'}", name)
        return value

    def optional_str(self, name: str, **kw) -> str | None:
        if self.raw(name, None) is None:
            return None
        return self.str(name, **kw)

    def optional_path(self, name: str) -> Path | None:
        value = self.optional_str(name)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def done(self):
        unknown = sorted(str(k) for k in self.data if k not in self.seen)
        if unknown:
            self.fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _read_source(node: _Node) -> Source:
    src = Source(
        architecture=node.str("architecture", "ResNet50", choices=ARCHITECTURES),
        weights=node.optional_path("weights"),
        seed=node.int("seed", 0, minimum=0),
        classes=node.int("classes", 1000, minimum=2),
        model_file=node.optional_path("model_file"),
        sha256=node.optional_str("sha256", pattern=_SHA256_HEX_RE, what="sha256 (64 lowercase hex)"),
    )
    if src.sha256 is not None and src.model_file is None and src.weights is None:
        node.fail("pins the sha256 of a model file or weights file, but neither is set", "sha256")
    if src.model_file is not None and src.model_file.suffix not in MODEL_FILE_SUFFIXES:
        node.fail(f"must be a {' or '.join(MODEL_FILE_SUFFIXES)} file, got {src.model_file.name!r}", "model_file")
    if src.model_file is not None and src.weights is not None:
        node.fail("give either weights (for the architecture) or model_file, not both", "weights")
    node.done()
    return src


def request_bounds_problem(max_image_pixels: int, max_request_pixels: int) -> str | None:
    """Why a request pixel bound below the image bound is refused: one image the image bound lets through
    would then be refused by the request bound, under the wrong name."""
    if max_request_pixels < max_image_pixels:
        return (f"must be at least model.max_image_pixels ({max_image_pixels}): one image at that limit must fit "
                f"in a request, got {max_request_pixels}")
    return None


FOLD_COMPLETE = "complete"


def _read_fold(node: _Node) -> bool | str:
    value = node.raw("fold_batch_norms", True)
    if isinstance(value, bool) or value == FOLD_COMPLETE:
        return value
    node.fail(f"must be true, false or {FOLD_COMPLETE}, got {_describe(value)}", "fold_batch_norms")


def _read_model(node: _Node) -> ModelSettings:
    source = _read_source(node.child("source", {}))
    digests_node = node.child("digests", {})
    digests = {}
    for layout in list(digests_node.data):
        if layout not in paths.LAYOUTS:
            digests_node.fail(f"must be one of {', '.join(paths.LAYOUTS)}", str(layout))
        digests[layout] = digests_node.str(layout, pattern=_DIGEST_RE, what="digest (sha256:<64 hex>)")
    model = ModelSettings(
        name=node.str("name", pattern=_NAME_RE, what="model name (lowercase letters, digits, '-')"),
        version=node.int("version", minimum=1),
        source=source,
        labels=node.optional_path("labels"),
        preprocessing=node.str("preprocessing", "auto", choices=PREPROCESSING_MODES),
        top_k=node.int("top_k", 5, minimum=1),
        # Bounded so a typo cannot overflow int64 in the graph (issue 13); see export/preprocess.py.
        max_image_pixels=node.int("max_image_pixels", 40_000_000, minimum=1, maximum=MAX_IMAGE_PIXELS),
        jpeg_fast_downscale=node.bool("jpeg_fast_downscale", True),
        digests=digests,
        samples_dir=node.optional_path("samples_dir"),
        exif_orientation=node.bool("exif_orientation", True),
        fold_batch_norms=_read_fold(node),
        max_request_pixels=node.int("max_request_pixels", DEFAULT_MAX_REQUEST_PIXELS, minimum=1,
                                    maximum=MAX_REQUEST_PIXELS),
        max_request_bytes=node.int("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES, minimum=1,
                                   maximum=MAX_REQUEST_BYTES),
    )
    problem = request_bounds_problem(model.max_image_pixels, model.max_request_pixels)
    if problem:
        node.fail(problem, "max_request_pixels")
    if source.model_file is None and model.top_k > source.classes:
        node.fail(f"must be at most the number of classes ({source.classes}), got {model.top_k}", "top_k")
    node.done()
    return model


def _read_store(node: _Node) -> Store:
    def uri(name: str, default: Any = ...) -> str | None:
        value = node.optional_str(name) if default is None else node.str(name)
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in STORE_SCHEMES or not rest.strip("/"):
            node.fail(f"unsupported storage URI {value!r}: use gs://, s3://, az://<container>/<path>, "
                      "pvc://<claim>/<path> or file://", name)
        if value.endswith("/"):
            node.fail(f"{value!r} must not end with '/'", name)
        if scheme == "pvc" and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[^/]+)*$", rest):
            node.fail(f"{value!r} is not pvc://<claim-name>[/<path>]", name)
        if scheme == "az":
            _check_az_uri(node, name, value, rest)
        return value

    store = Store(uri=uri("uri"), publish_uri=uri("publish_uri", None))
    store = _with_azure_account(store, node)
    store = _with_identity(store, node)
    node.done()
    return store


def _read_deploy(node: _Node) -> Deploy:
    label = node.child("gpu_cluster_label", {"key": "accelerator", "value": "nvidia"})
    deploy = Deploy(
        namespace=node.str("namespace", "tf-serving", pattern=_NAME_RE, what="namespace"),
        repo_url=node.str("repo_url"),
        revision=node.str("revision", "main"),
        argocd_namespace=node.str("argocd_namespace", "argocd", pattern=_NAME_RE, what="namespace"),
        gpu_cluster_label=(
            label.str("key", pattern=_LABEL_KEY_RE, what="label key"),
            label.str("value", pattern=_LABEL_VALUE_RE, what="label value"),
        ),
    )
    label.done()
    node.done()
    return deploy


def _read_image(node: _Node) -> ImageRef:
    image = ImageRef(
        repository=node.str("repository", pattern=_IMAGE_REPO_RE, what="image repository"),
        tag=node.str("tag", pattern=_TAG_RE, what="image tag"),
        digest=node.optional_str("digest", pattern=_DIGEST_RE, what="image digest (sha256:<64 hex>)"),
    )
    if image.tag == "latest":
        node.fail("'latest' is not a pinned version: use a release tag such as 2.20.0", "tag")
    node.done()
    return image


def _quantity(node: _Node, name: str) -> str:
    value = node.raw(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not _QUANTITY_RE.match(str(value)):
        node.fail(f"must be a Kubernetes quantity such as 4Gi, got {_describe(value)}", name)
    return str(value)


def _read_resources(node: _Node) -> Resources:
    cpu = node.raw("cpu")
    if isinstance(cpu, bool) or not (
        (isinstance(cpu, (int, float)) and cpu > 0) or (isinstance(cpu, str) and (_CPU_RE.match(cpu) or _QUANTITY_RE.match(cpu)))
    ):
        node.fail(f"must be a positive number of cores or millicores such as 3500m, got {_describe(cpu)}", "cpu")
    resources = Resources(cpu=str(cpu), memory=_quantity(node, "memory"),
                          ephemeral_storage=_quantity(node, "ephemeral_storage"))
    if resources.cpu in ("0", "0m", "0.0"):
        node.fail("must be more than 0", "cpu")
    node.done()
    return resources


def _read_autoscaling(node: _Node) -> Autoscaling:
    a = Autoscaling(
        min_replicas=node.int("min_replicas", minimum=1),
        max_replicas=node.int("max_replicas", minimum=1),
        target_cpu_utilization=node.int("target_cpu_utilization", 70, minimum=1, maximum=100),
        **_read_autoscaling_signal(node),
    )
    if a.max_replicas < a.min_replicas:
        node.fail(f"must be at least min_replicas ({a.min_replicas}), got {a.max_replicas}", "max_replicas")
    node.done()
    return a


# --- serving-signal autoscaling (issue 15) ------------------------------------------------------------------
# cpu: the CPU HPA; requests / queue_latency: a KEDA ScaledObject with a Prometheus trigger on TF Serving's own
# metrics (observability.keda must be on; when it is off, those targets fall back to the CPU HPA).
AUTOSCALING_METRICS = ("cpu", "requests", "queue_latency")


def _read_autoscaling_signal(node: _Node) -> dict[str, Any]:
    return dict(
        metric=node.str("metric", "cpu", choices=AUTOSCALING_METRICS),
        target_requests_per_second=node.float("target_requests_per_second", 20.0, low=0.0, high=1e6),
        target_queue_latency_ms=node.float("target_queue_latency_ms", 20.0, low=0.0, high=60_000.0),
    )


def _read_batching(node: _Node) -> Batching:
    allowed = node.raw("allowed_batch_sizes", [])
    if not isinstance(allowed, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in allowed):
        node.fail("must be a list of positive integers", "allowed_batch_sizes")
    b = Batching(
        max_batch_size=node.int("max_batch_size", minimum=1, maximum=1000),
        batch_timeout_micros=node.int("batch_timeout_micros", 0, minimum=0),
        num_batch_threads=node.int("num_batch_threads", minimum=1),
        max_enqueued_batches=node.int("max_enqueued_batches", 100, minimum=1),
        allowed_batch_sizes=tuple(allowed),
    )
    # TF Serving's rule: allowed sizes increase and the last one equals max_batch_size.
    if allowed and (sorted(set(allowed)) != list(allowed) or allowed[-1] != b.max_batch_size):
        node.fail(f"must increase and end with max_batch_size ({b.max_batch_size})", "allowed_batch_sizes")
    node.done()
    return b


def _read_target(name: str, node: _Node) -> Target:
    if not _NAME_RE.match(name):
        node.fail("a target name must be lowercase letters, digits and '-'")
    accelerator = node.str("accelerator", choices=ACCELERATORS)
    layout = node.str("layout", choices=paths.LAYOUTS)
    gpus = node.int("gpus", 0, minimum=0)
    fraction = node.raw("gpu_memory_fraction", None)
    selector_node = node.child("node_selector", {})
    selector = {}
    for key in list(selector_node.data):
        if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
            selector_node.fail("is not a valid label key", str(key))
        selector[key] = selector_node.str(key, pattern=_LABEL_VALUE_RE, what="label value")
    target = Target(
        name=name,
        accelerator=accelerator,
        layout=layout,
        image=_read_image(node.child("image")),
        resources=_read_resources(node.child("resources")),
        autoscaling=_read_autoscaling(node.child("autoscaling")),
        batching=_read_batching(node.child("batching")),
        gpus=gpus,
        gpu_memory_fraction=None if fraction is None else node.float("gpu_memory_fraction"),
        node_selector=selector,
        golden_tolerance=_read_golden_tolerance(node.child("golden_tolerance", {}), accelerator),
    )
    target = _read_deployment_settings(target, node)
    target = _read_cpu_math(target, node)
    if accelerator == "none":
        if layout == "channels_first":
            node.fail("channels_first needs a GPU target: the CPU serving image cannot run NCHW convolutions", "layout")
        if gpus:
            node.fail(f"must be 0 on a target without an accelerator, got {gpus}", "gpus")
        if fraction is not None:
            node.fail("applies to GPU targets only", "gpu_memory_fraction")
    elif gpus < 1:
        node.fail(f"must be at least 1 for an {accelerator} target, got {gpus}", "gpus")
    if accelerator != "none" and not target.image.tag.endswith("-gpu"):
        node.fail(f"a GPU target needs a -gpu serving image tag, got {target.image.tag!r}", "image.tag")
    if accelerator == "none" and target.image.tag.endswith("-gpu"):
        node.fail(f"a CPU target needs the CPU serving image, got {target.image.tag!r}", "image.tag")
    node.done()
    return target


# ---- the golden set's tolerances, per target (issue 11) ---------------------------------------------------
# How far a cluster's answers to the golden set may differ from what validation recorded. The defaults come
# from measurements and documented GPU numerics: docs/golden-set.md#tolerances (`python -m
# tools.goldenset.measure` re-measures the CPU figures).

@dataclass(frozen=True)
class GoldenTolerance:
    # Largest |served - recorded| probability of any class in both top-k lists.
    probability: float
    # An image whose recorded top-1 probability leads top-2 by less is flagged unstable: its top-1 class is
    # not checked on this target (its probabilities still are). At least 2 x probability: two classes each
    # moving by the tolerance towards each other can swap only when closer than that.
    min_top1_margin: float


# cpu: the largest difference measured here is 4.1e-6 (oneDNN on vs off, NHWC vs NCHW, batch vs alone), so
# 1e-4 leaves 25x room for another CPU model and thread count. gpu: TF32 (on by default on Ampere and later)
# rounds convolution inputs to 10 mantissa bits, and cuDNN picks algorithms per GPU and batch size.
GOLDEN_TOLERANCE_DEFAULTS = {
    "none": GoldenTolerance(probability=1e-4, min_top1_margin=1e-3),
    "nvidia": GoldenTolerance(probability=2e-2, min_top1_margin=5e-2),
}


def golden_tolerance_for(target: Target) -> GoldenTolerance:
    return target.golden_tolerance or GOLDEN_TOLERANCE_DEFAULTS[target.accelerator]


def _read_golden_tolerance(node: _Node, accelerator: str) -> GoldenTolerance | None:
    if not node.data:
        node.done()
        return None
    default = GOLDEN_TOLERANCE_DEFAULTS[accelerator]
    tolerance = GoldenTolerance(
        probability=node.float("probability", default.probability, low=0.0, high=0.5),
        min_top1_margin=node.float("min_top1_margin", default.min_top1_margin, low=0.0, high=1.0),
    )
    if tolerance.min_top1_margin < 2 * tolerance.probability:
        node.fail(f"must be at least twice probability ({2 * tolerance.probability:g}): two classes each within "
                  f"the tolerance can swap places when closer than that; got {tolerance.min_top1_margin:g}",
                  "min_top1_margin")
    node.done()
    return tolerance


def parse_config(data: Any, file: str = paths.MODEL_YAML, base: Path | None = None) -> Config:
    base = base or Path(".")
    root = _Node(data, "", file, base)
    model = _read_model(root.child("model"))
    store = _read_store(root.child("store"))
    deploy = _read_deploy(root.child("deploy"))
    targets_node = root.child("targets")
    targets = {str(name): _read_target(str(name), targets_node.child(name)) for name in list(targets_node.data)}
    targets_node.seen.update(targets_node.data)
    if not targets:
        targets_node.fail("must define at least one target")
    for layout in model.digests:
        if not any(t.layout == layout for t in targets.values()):
            root.fail(f"no target serves {layout}", f"model.digests.{layout}")
    images = _read_images(root.child("images", {}))
    observability = _read_observability(root.child("observability", {}), targets)
    root.done()
    return Config(model=model, store=store, deploy=deploy, targets=targets, path=base / file, images=images,
                  observability=observability)


# --- observability (issue 15): PodMonitor, PrometheusRule, Grafana dashboard, KEDA -----------------------------
_URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_PROM_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class AlertThresholds:
    error_ratio: float  # share of requests failing (status not OK/INVALID_ARGUMENT) over 5 minutes
    latency_slo_ms: float  # p99 objective: 99% of successful requests faster than this
    queue_latency_ms: float  # mean wait in TF Serving's batching queue
    pods_not_ready_minutes: int  # fewer available replicas than wanted for this long
    gpu_utilization_percent: int  # DCGM_FI_DEV_GPU_UTIL sustained above this: the GPU is saturated
    gpu_memory_ratio: float  # framebuffer used / total above this


@dataclass(frozen=True)
class Observability:
    pod_monitor: bool
    alerts: bool
    dashboard: bool
    keda: bool
    prometheus_url: str  # what KEDA's Prometheus trigger queries
    selector_labels: dict[str, str]  # on the PodMonitor and PrometheusRule, for the Prometheus' selectors
    dashboard_label: tuple[str, str]  # the Grafana sidecar's ConfigMap label
    dcgm_pod_label: str  # the label that carries the serving pod's name on DCGM series
    thresholds: AlertThresholds

    def scaled_object(self, target: "Target") -> bool:
        """True when this target's replicas follow a serving signal through KEDA (else the CPU HPA)."""
        return self.keda and target.autoscaling.metric != "cpu"


def _read_thresholds(node: _Node) -> AlertThresholds:
    t = AlertThresholds(
        error_ratio=node.float("error_ratio", 0.01, low=0.0, high=1.0),
        latency_slo_ms=node.float("latency_slo_ms", 500.0, low=0.0, high=600_000.0),
        queue_latency_ms=node.float("queue_latency_ms", 100.0, low=0.0, high=600_000.0),
        pods_not_ready_minutes=node.int("pods_not_ready_minutes", 15, minimum=1, maximum=1440),
        gpu_utilization_percent=node.int("gpu_utilization_percent", 95, minimum=1, maximum=100),
        gpu_memory_ratio=node.float("gpu_memory_ratio", 0.95, low=0.0, high=1.0),
    )
    node.done()
    return t


def _read_observability(node: _Node, targets: dict[str, "Target"]) -> Observability:
    selector_node = node.child("selector_labels", {})
    selector = {}
    for key in list(selector_node.data):
        if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
            selector_node.fail("is not a valid label key", str(key))
        selector[key] = selector_node.str(key, pattern=_LABEL_VALUE_RE, what="label value")
    label = node.child("dashboard_label", {"key": "grafana_dashboard", "value": "1"})
    obs = Observability(
        pod_monitor=node.bool("pod_monitor", False),
        alerts=node.bool("alerts", False),
        dashboard=node.bool("dashboard", False),
        keda=node.bool("keda", False),
        prometheus_url=node.str("prometheus_url", "http://prometheus-operated.monitoring.svc:9090",
                                pattern=_URL_RE, what="http(s) URL"),
        selector_labels=selector,
        dashboard_label=(label.str("key", pattern=_LABEL_KEY_RE, what="label key"),
                         label.str("value", pattern=_LABEL_VALUE_RE, what="label value")),
        dcgm_pod_label=node.str("dcgm_pod_label", "exported_pod", pattern=_PROM_LABEL_RE, what="Prometheus label name"),
        thresholds=_read_thresholds(node.child("thresholds", {})),
    )
    label.done()
    # Alerts, the dashboard and KEDA's triggers read the per-version labels only the PodMonitor's relabeling adds.
    for key in ("alerts", "dashboard", "keda"):
        if getattr(obs, key) and not obs.pod_monitor:
            node.fail("needs observability.pod_monitor: true (it reads the labels the PodMonitor adds)", key)
    node.done()
    return obs


def load_yaml(path: Path) -> Any:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except DuplicateKeyError:
        raise UserError(f"{path}: not valid YAML: {_duplicate_key(text)}") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{path}: not valid YAML: {' '.join(line.strip() for line in first[:3])}") from None


def _duplicate_key(text: str) -> str:
    """`<key path>: duplicate key (lines a and b)` for the first key given twice in one mapping (issue 13:
    ruamel's own message names the key but not where in the tree it is)."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    def walk(node, path):
        if isinstance(node, MappingNode):
            seen = {}
            for key, value in node.value:
                name = str(key.value)
                where = f"{path}.{name}" if path else name
                if name in seen:
                    return f"{where}: duplicate key (lines {seen[name] + 1} and {key.start_mark.line + 1})"
                seen[name] = key.start_mark.line
                found = walk(value, where)
                if found:
                    return found
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                found = walk(item, f"{path}[{i}]")
                if found:
                    return found
        return None

    return walk(YAML(typ="safe", pure=True).compose(text), "") or "a key is given twice"


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path) if path else paths.REPO_ROOT / paths.MODEL_YAML
    return parse_config(load_yaml(path), file=path.name, base=path.resolve().parent)


# ----------------------------------------------------------------------------------------------------------
# Issue 12: where GPU pods may run (targets.<t>.platform, tolerations), how they roll out (targets.<t>.rollout),
# which cloud identity the fetching pods use (store.identity), and digest pins of the helper images (images).
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str = "Exists"  # Exists or Equal
    value: str | None = None
    effect: str = "NoSchedule"

    def as_dict(self) -> dict[str, str]:
        out = {"key": self.key, "operator": self.operator}
        if self.value is not None:
            out["value"] = self.value
        out["effect"] = self.effect
        return out


@dataclass(frozen=True)
class GpuScheduling:
    node_selector: dict[str, str]
    required_label_keys: tuple[str, ...]  # node affinity `Exists` terms (a label whose value varies per GPU)
    tolerations: tuple[Toleration, ...]


# The taint GKE puts on GPU nodes of a cluster that also has CPU nodes:
# https://cloud.google.com/kubernetes-engine/docs/how-to/gpus ("nvidia.com/gpu=present:NoSchedule").
# Clusters with the GPU Operator or EKS node groups are commonly tainted the same way by their owners.
_NVIDIA_TAINT = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
# The taint AKS's GPU guide suggests for GPU node pools (`az aks nodepool add --node-taints sku=gpu:NoSchedule`):
# https://learn.microsoft.com/azure/aks/use-nvidia-gpu
_AKS_TAINT = Toleration(key="sku", operator="Equal", value="gpu", effect="NoSchedule")

# targets.<t>.platform -> where the GPU pods go. Every platform relies first on the nvidia.com/gpu limit, which
# alone keeps the pod off nodes without GPUs (the scheduler's NodeResourcesFit filter); the selectors below only
# narrow the choice further on clusters that label their GPU nodes.
GPU_PLATFORMS: dict[str, GpuScheduling] = {
    # Works on all of the below: no label required, both common GPU taints tolerated.
    "generic": GpuScheduling({}, (), (_NVIDIA_TAINT, _AKS_TAINT)),
    # GKE labels every GPU node `cloud.google.com/gke-accelerator: <gpu type>` (nvidia-l4, nvidia-tesla-t4, ...):
    # https://cloud.google.com/kubernetes-engine/docs/how-to/gpus#multiple_gpus
    "gke": GpuScheduling({}, ("cloud.google.com/gke-accelerator",), (_NVIDIA_TAINT,)),
    # EKS accelerated AMIs add no GPU label or taint; the NVIDIA device plugin adds only the nvidia.com/gpu
    # resource (https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html), so the limit is
    # the selector. The nvidia.com/gpu toleration covers node groups tainted by their owners.
    "eks": GpuScheduling({}, (), (_NVIDIA_TAINT,)),
    # AKS GPU node pools carry `accelerator: nvidia` (https://learn.microsoft.com/azure/aks/use-nvidia-gpu).
    "aks": GpuScheduling({"accelerator": "nvidia"}, (), (_AKS_TAINT,)),
    # Only the NVIDIA GPU Operator sets `nvidia.com/gpu.present: "true"` (NVIDIA/gpu-operator
    # controllers/state_manager.go, commonGPULabelKey).
    "gpu-operator": GpuScheduling({"nvidia.com/gpu.present": "true"}, (), (_NVIDIA_TAINT,)),
}
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def gpu_scheduling(target: Target) -> GpuScheduling:
    """The platform's scheduling; an explicit node_selector replaces its selector, explicit tolerations add."""
    if not target.is_gpu:
        return GpuScheduling({}, (), target.tolerations)
    base = GPU_PLATFORMS[target.platform]
    selector = dict(target.node_selector) if target.node_selector else dict(base.node_selector)
    keys = () if target.node_selector else base.required_label_keys
    tolerations = tuple(dict.fromkeys(base.tolerations + target.tolerations))
    return GpuScheduling(selector, keys, tolerations)


@dataclass(frozen=True)
class Rollout:
    """RollingUpdate of the serving Deployment (kubernetes.io/docs/concepts/workloads/controllers/deployment)."""
    max_surge: int
    max_unavailable: int
    # --- issue 14: canary rollouts (read by _read_canary, block at the end of this file) ---
    strategy: str = "rolling"  # rolling | canary
    canary: "Canary | None" = None  # set when strategy is canary


def default_rollout(accelerator: str, min_replicas: int) -> Rollout:
    """CPU: surge one pod, never drop one. GPU with more than one replica: replace in place (no spare GPU needed);
    a single GPU replica can only be replaced by surging, which needs a spare GPU or the cluster autoscaler."""
    if accelerator != "none" and min_replicas > 1:
        return Rollout(max_surge=0, max_unavailable=1)
    return Rollout(max_surge=1, max_unavailable=0)


def _read_toleration(node: _Node) -> Toleration:
    t = Toleration(
        key=node.str("key", pattern=_LABEL_KEY_RE, what="taint key"),
        operator=node.str("operator", "Exists", choices=TOLERATION_OPERATORS),
        value=node.optional_str("value", pattern=_LABEL_VALUE_RE, what="taint value"),
        effect=node.str("effect", "NoSchedule", choices=TAINT_EFFECTS),
    )
    if t.operator == "Equal" and t.value is None:
        node.fail("is required with operator Equal", "value")
    if t.operator == "Exists" and t.value is not None:
        node.fail("must be unset with operator Exists", "value")
    node.done()
    return t


def _read_deployment_settings(target: Target, node: _Node) -> Target:
    from dataclasses import replace

    platform = node.str("platform", "generic", choices=tuple(GPU_PLATFORMS))
    if target.accelerator == "none" and "platform" in node.data:
        node.fail("applies to GPU targets only", "platform")
    raw = node.raw("tolerations", [])
    if not isinstance(raw, list):
        node.fail(f"must be a list of {{key, operator, value, effect}}, got {_describe(raw)}", "tolerations")
    tolerations = tuple(_read_toleration(_Node(t, node.key(f"tolerations[{i}]"), node.file, node.base))
                        for i, t in enumerate(raw))
    a = target.autoscaling
    default = default_rollout(target.accelerator, a.min_replicas)
    r = node.child("rollout", {})
    rollout = Rollout(max_surge=r.int("max_surge", default.max_surge, minimum=0),
                      max_unavailable=r.int("max_unavailable", default.max_unavailable, minimum=0))
    rollout = _read_canary(rollout, r)  # issue 14
    r.done()
    if rollout.max_surge == 0 and rollout.max_unavailable == 0:
        r.fail("max_surge and max_unavailable cannot both be 0 (Kubernetes rejects it: the rollout could never start)")
    if rollout.max_unavailable >= a.min_replicas:
        r.fail(f"max_unavailable {rollout.max_unavailable} would take every serving pod down during a rollout at "
               f"autoscaling.min_replicas {a.min_replicas}: lower it or raise min_replicas", "max_unavailable")
    return replace(target, platform=platform, tolerations=tolerations, rollout=rollout)


# store.identity: the cloud identity the fetching pods use; rendered into the ServiceAccount (and pod labels).
IDENTITY_PROVIDERS = ("gke", "eks", "aks")
# Which store scheme each provider's identity can read.
IDENTITY_SCHEMES = {"gke": "gs", "eks": "s3", "aks": "az"}
_GSA_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
# Microsoft Entra client and tenant IDs are GUIDs (the managed identity's or app registration's "Client ID").
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Azure naming rules: a storage account is 3-24 lowercase letters and digits
# (https://learn.microsoft.com/azure/storage/common/storage-account-overview#storage-account-name); a container is
# 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit
# (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
_AZURE_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
_AZURE_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
# Azure Workload Identity (Azure/azure-workload-identity, docs/book/src/topics/service-account-labels-and-annotations.md
# and pkg/webhook/consts.go): the ServiceAccount names the identity, and the webhook only mutates pods carrying
# the label (its MutatingWebhookConfiguration's objectSelector, deploy/azure-wi-webhook.yaml).
AZURE_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
AZURE_TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
AZURE_USE_LABEL = "azure.workload.identity/use"


@dataclass(frozen=True)
class StoreIdentity:
    provider: str  # gke | eks | aks
    principal: str  # the Google service account e-mail, the IAM role ARN, or the Azure client ID
    tenant_id: str | None = None  # aks only: when the identity lives in another tenant than the webhook's default

    @property
    def annotations(self) -> dict[str, str]:
        """ServiceAccount annotations. GKE Workload Identity: `iam.gke.io/gcp-service-account`
        (https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity); EKS IRSA:
        `eks.amazonaws.com/role-arn` (aws/amazon-eks-pod-identity-webhook README); Azure Workload Identity:
        `azure.workload.identity/client-id` and optionally `.../tenant-id` (see AZURE_CLIENT_ID_ANNOTATION)."""
        if self.provider == "aks":
            out = {AZURE_CLIENT_ID_ANNOTATION: self.principal}
            if self.tenant_id:
                out[AZURE_TENANT_ID_ANNOTATION] = self.tenant_id
            return out
        key = {"gke": "iam.gke.io/gcp-service-account", "eks": "eks.amazonaws.com/role-arn"}[self.provider]
        return {key: self.principal}

    @property
    def pod_labels(self) -> dict[str, str]:
        """Labels the serving pods need besides the ServiceAccount annotation: Azure's webhook selects pods by one."""
        return {AZURE_USE_LABEL: "true"} if self.provider == "aks" else {}


def _check_az_uri(node: _Node, name: str, value: str, rest: str) -> None:
    container = rest.split("/", 1)[0]
    if "@" in container or "." in container:
        node.fail(f"{value!r}: write az://<container>/<path> and the storage account in store.azure_account", name)
    if not _AZURE_CONTAINER_RE.match(container):
        node.fail(f"{value!r}: {container!r} is not a valid Azure Blob container name (3-63 lowercase letters, "
                  "digits and single hyphens)", name)


def _with_azure_account(store: Store, node: _Node) -> Store:
    from dataclasses import replace

    az_keys = [k for k, v in (("uri", store.uri), ("publish_uri", store.publish_uri)) if v and v.startswith("az://")]
    account = node.optional_str("azure_account", pattern=_AZURE_ACCOUNT_RE,
                                what="Azure storage account name (3-24 lowercase letters and digits)")
    if az_keys and account is None:
        node.fail(f"store.{az_keys[0]} is an az:// URI: name its storage account here", "azure_account")
    if account is not None and not az_keys:
        node.fail(f"only az:// stores have a storage account, but store.uri is {store.uri!r}", "azure_account")
    return replace(store, azure_account=account)


def _with_identity(store: Store, node: _Node) -> Store:
    from dataclasses import replace

    if node.raw("identity", None) is None:
        return store
    n = node.child("identity")
    present = [p for p in IDENTITY_PROVIDERS if p in n.data]
    if len(present) != 1:
        n.fail(f"give exactly one of {', '.join(IDENTITY_PROVIDERS)} (gke: a Google service account e-mail, "
               "eks: an IAM role ARN, aks: a managed identity's client ID)")
    provider = present[0]
    pattern, what = {"gke": (_GSA_RE, "Google service account e-mail"),
                     "eks": (_ROLE_ARN_RE, "IAM role ARN"),
                     "aks": (_GUID_RE, "client ID (a GUID like 00000000-0000-0000-0000-000000000000)")}[provider]
    principal = n.str(provider, pattern=pattern, what=what)
    if provider != "aks" and "tenant_id" in n.data:
        n.fail("only an aks identity has a tenant_id", "tenant_id")
    tenant_id = n.optional_str("tenant_id", pattern=_GUID_RE, what="tenant ID (a GUID)") if provider == "aks" else None
    n.done()
    scheme = IDENTITY_SCHEMES[provider]
    if store.scheme != scheme:
        n.fail(f"{provider} identity reads {scheme}:// stores, but store.uri is {store.uri!r}", provider)
    return replace(store, identity=StoreIdentity(provider, principal, tenant_id))


@dataclass(frozen=True)
class Images:
    """Tags and digests of the helper images (rclone init step, python smoke test); the serving image is per target."""
    pins: dict[str, ImageRef]
    unpinned_waiver: str | None  # why images without a digest are accepted for now; None: they fail `make check`

    def unpinned(self, config: "Config") -> list[str]:
        refs = [i for i in self.pins.values()] + [t.image for t in config.targets.values()]
        return [i.reference for i in refs if not i.digest]


def _read_images(node: _Node) -> Images:
    pins_node = node.child("pins", {})
    pins = {}
    for name in list(pins_node.data):
        if not isinstance(name, str) or not _IMAGE_REPO_RE.match(name):
            pins_node.fail("is not an image name", str(name))
        child = pins_node.child(name)
        child.data = {"repository": name, **child.data}
        pins[name] = _read_image(child)
    images = Images(pins=pins, unpinned_waiver=node.optional_str("unpinned_waiver"))
    node.done()
    return images


# ----------------------------------------------------------------------------------------------------------
# Issue 14: canary rollouts (targets.<t>.rollout.strategy: canary). An Argo Rollouts Rollout takes over the
# target's Deployment (workloadRef), moves it through the canary steps, and aborts on failed analysis
# (docs/canary.md). Step and field meanings: argoproj/argo-rollouts docs/features/canary/index.md.
# ----------------------------------------------------------------------------------------------------------

ROLLOUT_STRATEGIES = ("rolling", "canary")
_DURATION_RE = re.compile(r"^[1-9][0-9]*[smh]$")  # Argo Rollouts durations: a number with s, m or h


@dataclass(frozen=True)
class CanaryStep:
    """One canary step: set_weight (percent of the pods that are canary pods) or pause (None: until promoted)."""
    set_weight: int | None = None
    pause: str | None = None  # a duration such as 10m; None with set_weight None: wait for `kubectl argo rollouts promote`


@dataclass(frozen=True)
class CanaryAnalysis:
    max_error_ratio: float  # share of the canary pods' requests with a status other than OK
    max_p99_latency_ms: float  # p99 of the canary pods' successful requests
    golden_set: bool  # replay the golden set against the canary Service after the first weight step
    prometheus_url: str | None  # None: observability.prometheus_url
    interval: str  # how often the Prometheus analysis measures
    failure_limit: int  # failed measurements tolerated before the rollout is aborted


@dataclass(frozen=True)
class Canary:
    steps: tuple[CanaryStep, ...]
    analysis: CanaryAnalysis


DEFAULT_CANARY_STEPS = (CanaryStep(set_weight=25), CanaryStep(pause="5m"),
                        CanaryStep(set_weight=50), CanaryStep(pause="5m"))


def _read_canary_step(node: _Node) -> CanaryStep:
    keys = [k for k in ("set_weight", "pause") if k in node.data]
    if len(keys) != 1:
        node.fail("give exactly one of set_weight (1-100) or pause (a duration such as 10m, or null: until promoted)")
    if keys[0] == "set_weight":
        step = CanaryStep(set_weight=node.int("set_weight", minimum=1, maximum=100))
    else:
        step = CanaryStep(pause=node.optional_str("pause", pattern=_DURATION_RE,
                                                  what="duration (a number with s, m or h, e.g. 10m)"))
    node.done()
    return step


def _read_canary(rollout: Rollout, node: _Node) -> Rollout:
    """targets.<t>.rollout.strategy and .canary; max_surge/max_unavailable apply to both strategies."""
    from dataclasses import replace

    strategy = node.str("strategy", "rolling", choices=ROLLOUT_STRATEGIES)
    if strategy == "rolling":
        if "canary" in node.data:
            node.fail("applies to strategy: canary only", "canary")
        return replace(rollout, strategy=strategy)
    c = node.child("canary", {})
    raw = c.raw("steps", None)
    if raw is None:
        steps = DEFAULT_CANARY_STEPS
    else:
        if not isinstance(raw, list) or not raw:
            c.fail(f"must be a non-empty list of {{set_weight: N}} and {{pause: D}}, got {_describe(raw)}", "steps")
        steps = tuple(_read_canary_step(_Node(s, c.key(f"steps[{i}]"), c.file, c.base)) for i, s in enumerate(raw))
    weights = [s.set_weight for s in steps if s.set_weight is not None]
    if not weights:
        c.fail("needs at least one set_weight step (a canary that never gets pods proves nothing)", "steps")
    if any(b <= a for a, b in zip(weights, weights[1:])):
        c.fail(f"set_weight must increase from step to step, got {weights}", "steps")
    a = c.child("analysis", {})
    analysis = CanaryAnalysis(
        max_error_ratio=a.float("max_error_ratio", 0.01, low=0.0, high=1.0),
        max_p99_latency_ms=a.float("max_p99_latency_ms", 500.0, low=0.0, high=600_000.0),
        golden_set=a.bool("golden_set", True),
        prometheus_url=a.optional_str("prometheus_url", pattern=re.compile(r"^https?://[^\s/]+(/\S*)?$"),
                                      what="http(s):// URL"),
        interval=a.str("interval", "1m", pattern=_DURATION_RE, what="duration (a number with s, m or h, e.g. 1m)"),
        failure_limit=a.int("failure_limit", 1, minimum=0, maximum=100),
    )
    a.done()
    c.done()
    return replace(rollout, strategy=strategy, canary=Canary(steps=steps, analysis=analysis))


# --- issue 16: oneDNN and bf16 math per CPU target -------------------------------------------------------------
# Rendered into the TF Serving container (tools/templates/overlay/cpu_math_patch.yaml.j2: the environment;
# mixed_precision_patch.yaml.j2: the flag); validation runs the layout a target serves under the same settings
# (tools/validate/settings.py).
#
# TF_ENABLE_ONEDNN_OPTS: tensorflow/tensorflow tensorflow/core/util/port.cc `IsMklEnabled` reads it once with
# ReadBoolFromEnvVar (0/1/false/true); unset, `DefaultOneDnnPolicy` decides: on Linux, on only when the CPU has
# AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX (whatever the vendor). TF Serving builds with oneDNN (its .bazelrc:
# build --define=build_with_onednn_v2=true), so the server reads the same variable.
# math: bf16 is TF Serving's own `--mixed_precision=bfloat16` (tensorflow/serving 2.20.0
# tensorflow_serving/model_servers/main.cc flag `mixed_precision`, g3doc/serving_config.md "Enables BF16 Automatic
# Mixed Precision"): servables/tensorflow/saved_model_bundle_factory.cc turns on grappler's
# `auto_mixed_precision_onednn_bfloat16` for every model it loads, which rewrites convolutions, matmuls and the ops
# between them to bfloat16 (tensorflow/core/grappler/optimizers/auto_mixed_precision.cc). Fast where the CPU has
# bf16 dot products (AVX512_BF16: AMD Zen 4/5, Intel Cooper Lake; AMX: Intel Sapphire Rapids and later), 1.4-1.9x at
# batch 8 and 32 on a Zen 5, 0.83-0.91x at batch 1 (docs/client-and-bench.md#bf16-math); answers move by ~1e-2, so a
# bf16 target needs a golden_tolerance to match. (It replaced TF_SET_ONEDNN_FPMATH_MODE=BF16, which TensorFlow
# 2.20's oneDNN obeys only on AMX CPUs: docs/client-and-bench.md#why-the-fpmath-variable-was-not-enough.)
ONEDNN_MODES = ("auto", "on", "off")
MATH_MODES = ("fp32", "bf16")
MIXED_PRECISION_FLAG = "--mixed_precision=bfloat16"
# The default, chosen by `make bench` (docs/client-and-bench.md#onednn-and-bf16): oneDNN on served more images per
# second than off at batch 8 and 32 on the AMD CPUs measured (Zen 4 and 5; Zen 3 without AVX-512, where "auto"
# leaves it off); at batch 1 the Zen 3 was faster with it off. fp32: bf16 moves answers beyond the default
# golden-set tolerance, so it is the owner's choice, not a default.
DEFAULT_ONEDNN = "on"
DEFAULT_MATH = "fp32"
# frozen_weights: TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 (tensorflow/core/util/onednn_env_vars.cc `AreWeightsFrozen`, read
# once per process; kernels/mkl/mkl_conv_ops.cc, mkl_matmul_op_fused.cc): oneDNN's convolutions and matmuls keep each
# filter reordered into their blocked layout instead of reordering the weights on every call. Right in TF Serving,
# whose kernels see one filter each (a version's variables are restored once, before its first call, and never
# assigned; each version has its own session), wrong anywhere a kernel sees a second filter (tools/onednn.py).
# `make bench` measured 1.18x at batch 1, 1.06x at 8 and 32 on an AMD EPYC Zen 5, answers within 3e-6, +45 MB per
# version (docs/client-and-bench.md#considered-and-rejected-frozen-weights). Opt-in until more CPUs are measured.
DEFAULT_FROZEN_WEIGHTS = False


@dataclass(frozen=True)
class CpuMath:
    onednn: str = DEFAULT_ONEDNN  # auto: TensorFlow's own choice for the node's CPU; on/off: forced
    math: str = DEFAULT_MATH  # fp32: as exported; bf16: grappler rewrites the model to bfloat16 (needs onednn: on)
    frozen_weights: bool = DEFAULT_FROZEN_WEIGHTS  # oneDNN keeps each reordered filter (needs onednn: on or auto)

    def env(self) -> dict[str, str]:
        """The serving container's environment for these settings (nothing set for auto, fp32, weights reordered)."""
        env = {} if self.onednn == "auto" else {ONEDNN_ENV: "1" if self.onednn == "on" else "0"}
        return {**env, ASSUME_FROZEN_ENV: "1"} if self.frozen_weights else env

    def args(self) -> list[str]:
        """The serving container's extra flags for these settings."""
        return [MIXED_PRECISION_FLAG] if self.math == "bf16" else []

    def describe(self) -> str:
        return f"onednn: {self.onednn}, math: {self.math}" + (", frozen_weights: true" if self.frozen_weights else "")


def _read_cpu_math(target: Target, node: _Node) -> Target:
    from dataclasses import replace

    if target.accelerator != "none":
        for key in ("onednn", "math", "frozen_weights"):
            if key in node.data:
                node.fail("applies to CPU targets only (a GPU target's convolutions run on the GPU)", key)
        return target
    # YAML 1.1 readers (PyYAML) turn a bare on/off into a boolean; ruamel (YAML 1.2, load_yaml) keeps the string.
    raw = node.raw("onednn", DEFAULT_ONEDNN)
    onednn = ("on" if raw else "off") if isinstance(raw, bool) else node.str("onednn", DEFAULT_ONEDNN,
                                                                              choices=ONEDNN_MODES)
    settings = CpuMath(onednn=onednn,
                       math=node.str("math", DEFAULT_MATH, choices=MATH_MODES),
                       frozen_weights=node.bool("frozen_weights", DEFAULT_FROZEN_WEIGHTS))
    if settings.frozen_weights and settings.onednn == "off":
        node.fail("frozen_weights keeps oneDNN's reordered filters: it needs onednn: on or auto, got onednn: off",
                  "frozen_weights")
    # Grappler adds its bf16 rewrite only when oneDNN is on (tensorflow/core/grappler/optimizers/meta_optimizer.cc:
    # auto_mixed_precision_onednn_bfloat16 ... && IsMKLEnabled()): with it off or left to a CPU's default, the flag
    # would silently serve fp32 (measured: bit-identical answers with TF_ENABLE_ONEDNN_OPTS=0).
    if settings.math == "bf16" and settings.onednn != "on":
        node.fail(f"bf16 runs on oneDNN's bf16 kernels: it needs onednn: on, got onednn: {settings.onednn}", "math")
    return replace(target, cpu_math=settings)
