"""The profiler against the TF Serving test double: the sweep, its bounds, the CSV and the plot."""
from __future__ import annotations

import csv

import pytest

from tools import paths
from tools.client.images import samples
from tools.client.transport import Endpoint, make_transport
from tools.errors import UserError
from tools.profile import CSV_FIELDS, parse_sizes, run_sweep, summarize
from tools.profile.cli import main as profile_main


def endpoint_args(double, protocol: str) -> list[str]:
    if protocol == "grpc":
        return ["--grpc", "--host", "127.0.0.1", "--port", str(double.grpc_port)]
    return ["--url", double.rest_url]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_sweep_writes_csv_and_plot(serving_double, tiny_export, tmp_path, capsys, protocol):
    from PIL import Image

    code = profile_main(["--model", tiny_export.name, "--samples", "3", "--batch-sizes", "1,3", "--concurrency", "1,2",
                         "--requests", "4", "--warmup", "1", "--out", str(tmp_path), "--no-progress"]
                        + endpoint_args(serving_double, protocol))
    out, err = capsys.readouterr()
    assert code == 0, err
    with open(tmp_path / paths.PROFILE_CSV) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [(r["batch_size"], r["concurrency"]) for r in rows] == [("1", "1"), ("1", "2"), ("3", "1"), ("3", "2")]
    for r in rows:
        assert r["protocol"] == protocol and r["requests"] == "4"
        assert int(r["images"]) == 4 * int(r["batch_size"])
        assert 0 < float(r["latency_ms_min"]) <= float(r["latency_ms_p50"]) <= float(r["latency_ms_p90"]) \
            <= float(r["latency_ms_p99"]) <= float(r["latency_ms_max"])
        assert float(r["images_per_s"]) > 0
    # Every timed and warmup request reached the server with its batch: 2 warmups + 4 points x 4 requests.
    assert sorted(c.batch for c in serving_double.calls) == [1] * 9 + [3] * 9
    with Image.open(tmp_path / paths.PROFILE_PNG) as im:
        assert im.format == "PNG" and im.size[0] > 1000 and im.size[1] > 400
    assert "p50 ms" in out and str(tmp_path / paths.PROFILE_CSV) in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_time_limit_cuts_a_point_short(serving_double, tiny_export):
    serving_double.delay = 0.2
    transport = make_transport(Endpoint(model=tiny_export.name, host="127.0.0.1", port=serving_double.rest_port))
    images = [s.data for s in samples(1)]
    points = run_sweep(transport, images, [1], [2], requests=50, max_seconds=0.3, warmup=0, progress=False)
    assert 1 <= points[0].requests < 50


def test_failed_request_stops_the_sweep_and_writes_nothing(closed_port, tmp_path, capsys):
    code = profile_main(["--model", "tiny", "--samples", "1", "--batch-sizes", "1", "--concurrency", "1",
                         "--requests", "2", "--out", str(tmp_path / "out"), "--no-progress",
                         "--url", f"http://127.0.0.1:{closed_port}"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "cannot reach TF Serving" in err
    assert not (tmp_path / "out").exists()


def test_server_error_during_sweep(serving_double, capsys, tmp_path):
    code = profile_main(["--model", "nope", "--samples", "1", "--batch-sizes", "1", "--concurrency", "2",
                         "--requests", "2", "--out", str(tmp_path), "--no-progress"]
                        + endpoint_args(serving_double, "grpc"))
    _, err = capsys.readouterr()
    assert code == 2 and "Servable not found for request: Latest(nope)" in err


@pytest.mark.parametrize("text, message", [("", "positive integers"), ("1,x", "positive integers"),
                                           ("0,2", "positive integers"), ("2,2", "twice")])
def test_parse_sizes_refuses(text, message):
    with pytest.raises(UserError, match=message):
        parse_sizes(text, "--batch-sizes")


def test_summarize_percentiles():
    point = summarize("rest", 4, 2, [0.001 * i for i in range(1, 101)], seconds=2.0)
    assert point.latency_ms_p50 == pytest.approx(50.5)
    assert point.latency_ms_p90 == pytest.approx(90.1)
    assert point.latency_ms_p99 == pytest.approx(99.01)
    assert point.latency_ms_min == pytest.approx(1) and point.latency_ms_max == pytest.approx(100)
    assert point.images_per_s == pytest.approx(200) and point.requests_per_s == pytest.approx(50)
