"""Input series for the alert unit tests, shaped like what Prometheus stores from TF Serving, kube-state-metrics
and dcgm-exporter after the PodMonitor's relabeling: real metric names, TF Serving's own labels, and its
microsecond histogram buckets with the exact `le` strings it writes (tools/observability/metrics.py cites the
source of each). Each case is one `promtool test rules` test: the series, when to evaluate, what must fire.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tools.observability import metrics as m

NAMESPACE = "tf-serving"
POD = "tf-serving-7d9f8c6b5-x2k4p"
HASH = "7d9f8c6b5"
# Target labels of a TF Serving pod as the PodMonitor's relabeling and the operator's own rules set them.
TARGET = {"namespace": NAMESPACE, "pod": POD, "container": "tf-serving", "endpoint": "http",
          "job": "tf-serving/tf-serving", "instance": "10.8.1.17:8501",
          m.LABEL_MODEL: "resnet", m.LABEL_VERSION: "1", m.LABEL_LAYOUT: "channels_first", m.LABEL_TARGET: "gpu",
          m.LABEL_POD_TEMPLATE_HASH: HASH}
# What a per-version figure keeps (ObservabilityContext.by).
BY = {k: TARGET[k] for k in ("namespace", m.LABEL_MODEL, m.LABEL_TARGET, m.LABEL_VERSION)}
KSM = {"job": "kube-state-metrics", "instance": "10.8.0.5:8080", "namespace": NAMESPACE}
DCGM = {"job": "nvidia-dcgm-exporter", "instance": "10.8.2.9:9400", "namespace": "gpu-operator",
        "pod": "nvidia-dcgm-exporter-9xk2l", "gpu": "0", "UUID": "GPU-5c1d2f8e-0000-4b1e-9a55-3f1e2d3c4b5a",
        "device": "nvidia0", "modelName": "Tesla T4", "Hostname": "gpu-node-1",
        "exported_namespace": NAMESPACE, "exported_pod": POD, "exported_container": "tf-serving"}


def series(name: str, labels: dict, values: str) -> dict:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def counter(per_minute: float, minutes: int) -> str:
    """promtool's expanding notation: a counter rising per_minute each 1m step."""
    return f"0+{per_minute:g}x{minutes}"


def request_latency(per_minute: float, shares: list[tuple[float, float]], minutes: int, api: str = "Predict",
                    entrypoint: str = "GRPC", version: str = "1") -> list[dict]:
    """TF Serving's request_latency histogram of one pod: `shares` of the requests take `micros` each."""
    labels = {**TARGET, m.LABEL_VERSION: version, "model_name": "resnet", "API": api, "entrypoint": entrypoint}
    out = []
    for bound in m.exponential_buckets(*m.REQUEST_LATENCY_BUCKETS):
        inc = per_minute * sum(share for share, micros in shares if micros <= bound)
        out.append(series(m.REQUEST_LATENCY + "_bucket", {**labels, "le": m.le_text(bound)}, counter(inc, minutes)))
    out.append(series(m.REQUEST_LATENCY + "_bucket", {**labels, "le": "+Inf"}, counter(per_minute, minutes)))
    out.append(series(m.REQUEST_LATENCY + "_sum", labels,
                      counter(per_minute * sum(s * us for s, us in shares), minutes)))
    out.append(series(m.REQUEST_LATENCY + "_count", labels, counter(per_minute, minutes)))
    return out


def request_count(per_minute_by_status: dict[str, float], minutes: int) -> list[dict]:
    return [series(m.REQUEST_COUNT, {**TARGET, "model_name": "resnet", "status": status}, counter(n, minutes))
            for status, n in per_minute_by_status.items()]


@dataclass
class Case:
    alert: str
    fires: bool
    eval_time: str
    input_series: list[dict]
    labels: dict = field(default_factory=dict)  # the firing alert's labels (alertname added)

    @property
    def id(self) -> str:
        return f"{self.alert}-{'fires' if self.fires else 'quiet'}"

    def promtool_test(self) -> dict:
        expected = [{"exp_labels": {**self.labels, "alertname": self.alert}}] if self.fires else []
        return {"interval": "1m", "input_series": self.input_series,
                "alert_rule_test": [{"eval_time": self.eval_time, "alertname": self.alert, "exp_alerts": expected}]}


FAST, SLOW = 40_000.0, 1_500_000.0  # 40 ms and 1.5 s: either side of a 500 ms objective (its bucket: 708235 us)


def cases() -> list[Case]:
    up = series("up", TARGET, "1x30")
    loaded = lambda path: series(m.LOAD_ATTEMPT_COUNT, {**TARGET, "model_path": path, "status": "success"}, "1x30")
    queue = lambda ms: [series(m.QUEUING_LATENCY + "_sum", {**TARGET, "thread_pool_name": "batch_threads"},
                               counter(600 * ms * 1000, 30)),
                        series(m.QUEUING_LATENCY + "_count", {**TARGET, "thread_pool_name": "batch_threads"},
                               counter(600, 30))]
    ksm = lambda available, wanted: [
        series(m.KSM_AVAILABLE_REPLICAS, {**KSM, "deployment": "tf-serving"}, f"{available}x30"),
        series(m.KSM_SPEC_REPLICAS, {**KSM, "deployment": "tf-serving"}, f"{wanted}x30")]
    dcgm_util = lambda pct: [series(m.DCGM_GPU_UTIL, DCGM, f"{pct}x30")]
    dcgm_mem = lambda used, free: [series(m.DCGM_FB_USED, DCGM, f"{used}x30"),
                                   series(m.DCGM_FB_FREE, DCGM, f"{free}x30")]
    restarts = lambda values: [series("kube_pod_container_status_restarts_total",
                                      {**KSM, "pod": POD, "container": "tf-serving", "uid": "0b1c"}, values)]
    pod_labels = {k: TARGET[k] for k in ("namespace", "pod", m.LABEL_MODEL, m.LABEL_TARGET, m.LABEL_VERSION)}
    burn = lambda slow_share, minutes: request_latency(600, [(1 - slow_share, FAST), (slow_share, SLOW)], minutes)
    gpu = {"exported_namespace": NAMESPACE, "exported_pod": POD, "severity": "warning"}
    return [
        # The pod's labels pin version 1 and TF Serving loaded /models/resnet/1.
        Case("TFServingPinnedVersionNotLoaded", False, "15m", [up, loaded("/models/resnet/1")]),
        # It loaded version 2 while its labels (the overlay) say 1: a wrong models.config or a stale pod.
        Case("TFServingPinnedVersionNotLoaded", True, "15m", [up, loaded("/models/resnet/2")],
             {**pod_labels, "severity": "critical"}),
        Case("TFServingModelLoadFailed", False, "10m", [loaded("/models/resnet/1")]),
        Case("TFServingModelLoadFailed", True, "10m",
             [series(m.LOAD_ATTEMPT_COUNT, {**TARGET, "model_path": "/models/resnet/1", "status": "fail"},
                     "0 0 0 0 0 1 1 1 1 1 1 1")],
             {**pod_labels, "model_path": "/models/resnet/1", "severity": "warning"}),
        Case("TFServingContainerRestarting", False, "20m", restarts("3x30")),
        Case("TFServingContainerRestarting", True, "20m", restarts("0+1x30"),
             {**KSM, "pod": POD, "container": "tf-serving", "uid": "0b1c", "severity": "warning"}),
        # 5% INVALID_ARGUMENT is the clients' fault and does not count; 3% INTERNAL does.
        Case("TFServingErrorRatioHigh", False, "20m", request_count({"OK": 950, "INVALID_ARGUMENT": 50}, 30)),
        Case("TFServingErrorRatioHigh", True, "20m", request_count({"OK": 970, "INTERNAL": 30}, 30),
             {**BY, "severity": "warning"}),
        # 10% slow burns the 1% budget 10x: above the slow alert's 6x, below the fast one's 14.4x.
        Case("TFServingLatencyBudgetBurnFast", False, "7h", burn(0.10, 430)),
        Case("TFServingLatencyBudgetBurnFast", True, "70m", burn(0.50, 80), {**BY, "severity": "critical"}),
        Case("TFServingLatencyBudgetBurnSlow", False, "7h", burn(0.005, 430)),
        Case("TFServingLatencyBudgetBurnSlow", True, "7h", burn(0.10, 430), {**BY, "severity": "warning"}),
        Case("TFServingBatchQueueLatencyHigh", False, "20m", queue(20)),
        Case("TFServingBatchQueueLatencyHigh", True, "20m", queue(250), {**BY, "severity": "warning"}),
        Case("TFServingPodsNotReady", False, "20m", ksm(2, 2)),
        Case("TFServingPodsNotReady", True, "20m", ksm(1, 2),
             {"namespace": NAMESPACE, "deployment": "tf-serving", "severity": "critical"}),
        Case("TFServingGPUSaturated", False, "20m", dcgm_util(70)),
        Case("TFServingGPUSaturated", True, "20m", dcgm_util(99), gpu),
        Case("TFServingGPUMemoryHigh", False, "20m", dcgm_mem(9000, 6000)),
        Case("TFServingGPUMemoryHigh", True, "20m", dcgm_mem(14900, 100), gpu),
    ]
