"""model.yaml `observability` and `targets.<t>.autoscaling.metric`: validated like every other key."""
import pytest

from tests.observability.helpers import ALL_OFF, config, config_data
from tools.config import ConfigError, parse_config
from tools import paths


def test_without_the_section_everything_is_off():
    data = config_data()
    del data["observability"]
    obs = parse_config(data, base=paths.REPO_ROOT).observability
    assert (obs.pod_monitor, obs.alerts, obs.dashboard, obs.keda) == (False, False, False, False)
    assert not any(obs.scaled_object(t) for t in parse_config(data).targets.values())


def test_the_repository_turns_it_on_and_scales_gpu_through_keda():
    from tools.config import load_config

    c = load_config()
    assert c.observability.pod_monitor and c.observability.alerts and c.observability.dashboard
    assert c.targets["gpu"].autoscaling.metric != "cpu" and c.observability.scaled_object(c.targets["gpu"])


def test_keda_off_falls_back_to_the_cpu_hpa():
    c = config({**ALL_OFF, "pod_monitor": True}, gpu_metric="queue_latency")
    assert c.targets["gpu"].autoscaling.metric == "queue_latency"
    assert not c.observability.scaled_object(c.targets["gpu"])


@pytest.mark.parametrize("change,message", [
    ({"alerts": "yes"}, "observability.alerts: must be true or false, got the string 'yes'"),
    ({"colour": 1}, "observability: unknown key 'colour'"),
    ({"pod_monitor": False}, "observability.alerts: needs observability.pod_monitor: true"),
    ({"prometheus_url": "prometheus:9090"}, "observability.prometheus_url: 'prometheus:9090' is not a valid http(s) URL"),
    ({"dcgm_pod_label": "exported-pod"}, "observability.dcgm_pod_label: 'exported-pod' is not a valid Prometheus label"),
    ({"selector_labels": {"release": "a b"}}, "observability.selector_labels.release: 'a b' is not a valid label value"),
    ({"thresholds": {"error_ratio": 2}}, "observability.thresholds.error_ratio: must be in (0.0, 1.0], got 2"),
    ({"thresholds": {"latency_slo_ms": 0}}, "observability.thresholds.latency_slo_ms: must be in (0.0, 600000.0]"),
    ({"thresholds": {"gpu_utilization_percent": 101}}, "observability.thresholds.gpu_utilization_percent: must be at most 100"),
    ({"thresholds": {"p99": 1}}, "observability.thresholds: unknown key 'p99'"),
])
def test_a_bad_observability_value_names_its_key(change, message):
    data = config_data()
    data["observability"].update(change)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


@pytest.mark.parametrize("change,message", [
    ({"metric": "gpu"}, "targets.gpu.autoscaling.metric: must be one of cpu, requests, queue_latency; got 'gpu'"),
    ({"target_requests_per_second": 0}, "targets.gpu.autoscaling.target_requests_per_second: must be in (0.0"),
    ({"target_queue_latency_ms": "20ms"}, "targets.gpu.autoscaling.target_queue_latency_ms: must be a number"),
])
def test_a_bad_autoscaling_signal_names_its_key(change, message):
    data = config_data()
    data["targets"]["gpu"]["autoscaling"].update(change)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)
