"""Observability of the served model: metric names, the PodMonitor relabeling, alerts, dashboard, KEDA.

    tools/observability/metrics.py     every upstream metric and label name used, with its source
    tools/observability/context.py     what the observability templates (tools/templates/overlay/*) read
    tools/observability/dashboard.py   the Grafana dashboard, built with the Grafana foundation SDK
    tools/observability/preview.py     the dashboard's PNG preview from a synthetic run (docs/)
    tools/observability/crds.py        the vendored upstream CRDs (PodMonitor, PrometheusRule, ScaledObject)
    tools/observability/checks.py      `make check`: the new kinds against those CRDs
"""
