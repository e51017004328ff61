"""A TF Serving-shaped /monitoring/prometheus/metrics page, written the way its exporter writes one
(tensorflow/serving tensorflow_serving/util/prometheus_exporter.cc and its test: `# TYPE <name> <kind>`, names
with ':' for every '/', histograms as cumulative _bucket lines ending with le="+Inf", then _sum and _count)."""
from __future__ import annotations

from tools.observability import metrics as m


def _labels(labels: dict) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def histogram(name: str, labels: dict, buckets: tuple, observations: list[float]) -> list[str]:
    lines = [f"# TYPE {name} histogram"]
    prefix = f"{name}_bucket{{{_labels(labels)}{',' if labels else ''}"
    for bound in m.exponential_buckets(*buckets):
        lines.append(f'{prefix}le="{m.le_text(bound)}"}} {sum(1 for o in observations if o <= bound)}')
    lines.append(f'{prefix}le="+Inf"}} {len(observations)}')
    lines.append(f"{name}_sum{{{_labels(labels)}}} {sum(observations):g}")
    lines.append(f"{name}_count{{{_labels(labels)}}} {len(observations)}")
    return lines


def page(model: str, version: int, ok: int, failed: int) -> str:
    """What one TF Serving process serving `model` at `version` exports after ok + failed requests."""
    lines = [f"# TYPE {m.LOAD_ATTEMPT_COUNT} counter",
             f'{m.LOAD_ATTEMPT_COUNT}{{model_path="/models/{model}/{version}",status="success"}} 1',
             f"# TYPE {m.REQUEST_COUNT} counter",
             f'{m.REQUEST_COUNT}{{model_name="{model}",status="OK"}} {ok}',
             f'{m.REQUEST_COUNT}{{model_name="{model}",status="INVALID_ARGUMENT"}} {failed}']
    lines += histogram(m.REQUEST_LATENCY, {"model_name": model, "API": "Predict", "entrypoint": "GRPC"},
                       m.REQUEST_LATENCY_BUCKETS, [35_000.0] * ok)
    lines += histogram(m.QUEUING_LATENCY, {"thread_pool_name": "batch_threads"}, m.QUEUING_LATENCY_BUCKETS,
                       [1_500.0] * ok)
    lines += [f"# TYPE {m.WRAPPED_RUN_COUNT} counter", f"{m.WRAPPED_RUN_COUNT} {max(1, ok // 4)}"]
    return "\n".join(lines) + "\n"
