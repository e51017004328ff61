"""The dashboard JSON (Grafana foundation SDK) and its PNG preview."""
import json
import re

from tests.observability.helpers import config
from tools.observability import context, dashboard, preview
from tools.observability import metrics as m

KNOWN = {m.REQUEST_COUNT, m.REQUEST_LATENCY + "_bucket", m.QUEUING_LATENCY + "_sum", m.QUEUING_LATENCY + "_count",
         m.WRAPPED_RUN_COUNT, m.KSM_AVAILABLE_REPLICAS, m.KSM_SPEC_REPLICAS, m.DCGM_GPU_UTIL, m.DCGM_FB_USED,
         m.DCGM_FB_FREE, "up", "tfserving:request_errors:ratio_rate5m"}


def test_every_query_reads_a_metric_with_a_cited_source():
    c = config()
    for target in c.targets.values():
        board = json.loads(dashboard.dashboard_json(context.build(c, target)))
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for t in panel["targets"]:
                used = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", t["expr"]))
                assert used and used <= KNOWN, (panel["title"], used - KNOWN)
        assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]


def test_the_json_is_stable():
    c = config()
    ctx = context.build(c, c.targets["gpu"])
    assert dashboard.dashboard_json(ctx) == dashboard.dashboard_json(ctx)


def test_the_preview_draws_every_panel(tmp_path):
    out = preview.draw("gpu", tmp_path / "preview.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_the_preview_cli_names_an_unknown_target(capsys):
    assert preview.main(["--target", "tpu", "--out", "/nonexistent/x.png"]) != 0
    assert "no target 'tpu' in model.yaml" in capsys.readouterr().err
