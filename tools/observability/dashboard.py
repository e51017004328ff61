"""The Grafana dashboard of one target, built with the Grafana foundation SDK (grafana/grafana-foundation-sdk,
PyPI grafana-foundation-sdk) rather than hand-written JSON.

    dashboard_json(ctx) -> str       # what the overlay's observability/tf-serving.json holds
    PANELS                           # (title, unit, [(expr, legend)]) in order: the preview draws the same list

Every query reads the labels the PodMonitor's relabeling adds, so each line is one version on one target.
The Prometheus data source is a dashboard variable, so the same JSON works in any Grafana.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from tools.observability import metrics as m
from tools.render import names

DATASOURCE_VARIABLE = "datasource"
PANEL_WIDTH, PANEL_HEIGHT = 12, 8  # Grafana's 24-column grid: two panels a row


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str  # Grafana unit id
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend format)


def panels(ctx) -> list[PanelSpec]:
    """The panels, in order, for one target's ObservabilityContext."""
    sel, by = ctx.sel, ctx.by
    version_legend = "v{{%s}} %s" % (m.LABEL_VERSION, "{{%s}}" % m.LABEL_TARGET)

    def quantile(q: float) -> tuple[str, str]:
        # request_latency is in microseconds: /1000 for ms.
        return (f"histogram_quantile({q}, sum by (le, {by}) (rate({m.REQUEST_LATENCY}_bucket{{{sel}}}[5m]))) / 1000",
                f"p{int(q * 100)} {version_legend}")

    specs = [
        PanelSpec("Request rate", "reqps", (
            (f"sum by ({by}, status) (rate({m.REQUEST_COUNT}{{{sel}}}[5m]))", f"{version_legend} {{{{status}}}}"),)),
        PanelSpec("Error ratio (INVALID_ARGUMENT excluded)", "percentunit", (
            (f"tfserving:request_errors:ratio_rate5m{{{sel}}}" if ctx.config.alerts else
             f'sum by ({by}) (rate({m.REQUEST_COUNT}{{{sel}, status!~"OK|INVALID_ARGUMENT"}}[5m])) '
             f"/ sum by ({by}) (rate({m.REQUEST_COUNT}{{{sel}}}[5m]))", version_legend),)),
        PanelSpec("Latency p50 / p99 (successful requests)", "ms", (quantile(0.5), quantile(0.99))),
        PanelSpec("Batching queue wait (mean)", "ms", (
            (f"sum by ({by}) (rate({m.QUEUING_LATENCY}_sum{{{sel}}}[5m])) "
             f"/ sum by ({by}) (rate({m.QUEUING_LATENCY}_count{{{sel}}}[5m])) / 1000", version_legend),)),
        PanelSpec("Requests per batch (mean)", "short", (
            (f"sum by ({by}) (rate({m.REQUEST_COUNT}{{{sel}}}[5m])) "
             f"/ sum by ({by}) (rate({m.WRAPPED_RUN_COUNT}{{{sel}}}[5m]))", version_legend),)),
        PanelSpec("Replicas", "short", (
            (f'sum by ({m.LABEL_VERSION}, {m.LABEL_POD_TEMPLATE_HASH}) (up{{{sel}}})',
             "v{{%s}} scraped (%s)" % (m.LABEL_VERSION, "{{%s}}" % m.LABEL_POD_TEMPLATE_HASH)),
            (f'max({m.KSM_AVAILABLE_REPLICAS}{{namespace="{ctx.namespace}", deployment="{names.DEPLOYMENT}"}})',
             "available"),
            (f'max({m.KSM_SPEC_REPLICAS}{{namespace="{ctx.namespace}", deployment="{names.DEPLOYMENT}"}})',
             "wanted"))),
    ]
    if ctx.target.is_gpu:
        pod = ctx.config.dcgm_pod_label
        specs.append(PanelSpec("GPU utilisation (DCGM)", "percent", (
            (f"avg by ({pod}) ({m.DCGM_GPU_UTIL}{{{ctx.dcgm_sel}}})", "{{%s}}" % pod),)))
        specs.append(PanelSpec("GPU memory used (DCGM)", "percentunit", (
            (f"sum by ({pod}) ({m.DCGM_FB_USED}{{{ctx.dcgm_sel}}}) / sum by ({pod}) "
             f"({m.DCGM_FB_USED}{{{ctx.dcgm_sel}}} + {m.DCGM_FB_FREE}{{{ctx.dcgm_sel}}})", "{{%s}}" % pod),)))
    return specs


def build(ctx):
    datasource = DataSourceRef(type_val="prometheus", uid="${%s}" % DATASOURCE_VARIABLE)
    board = (
        gdash.Dashboard(f"TF Serving: {ctx.model} on {ctx.target.name}")
        .uid(f"tf-serving-{ctx.model}-{ctx.target.name}"[:40])
        .tags(["tf-serving", ctx.model, ctx.target.name])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(gdash.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
    )
    for spec in panels(ctx):
        panel = (timeseries.Panel().title(spec.title).unit(spec.unit).datasource(datasource)
                 .height(PANEL_HEIGHT).span(PANEL_WIDTH))
        for i, (expr, legend) in enumerate(spec.queries):
            panel = panel.with_target(gprom.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
                                      .datasource(datasource))
        board = board.with_panel(panel)
    return board.build()


def dashboard_json(ctx) -> str:
    """Stable JSON (sorted keys, 2-space indent, trailing newline): a diff shows exactly what changed."""
    data = json.loads(json.dumps(build(ctx), cls=JSONEncoder))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
