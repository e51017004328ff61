"""Every PromQL query of the canary AnalysisTemplates: parsed by a real PromQL parser, names checked.

    problems(objects)   # ["AnalysisTemplate/<name> metric <m>: <problem>", ...] for the built objects of an overlay

Each query's Argo Rollouts arguments (`{{args.NAME}}`) are filled with a sample value (a hash is 10 lowercase
alphanumerics; any value keeps the syntax), then all queries go through `promtool check rules` as recording rules
(Debian's prometheus package: `make promtool`), so a syntax error fails `make check` instead of every analysis run.
The metric and label names are then checked against what TF Serving exports (tools/observability/metrics.py) and
what the PodMonitor's relabeling adds: a misspelled `:tensorflow:serving:request_count` or `status` would parse,
match nothing, and pass every canary (an empty result is "no traffic").
"""
from __future__ import annotations

import re
from typing import Any

from tools.errors import UserError
from tools.observability import checks as obs_checks
from tools.observability import context as obs_context
from tools.observability import metrics as m

_ARG_RE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")
SAMPLE_ARG = "5d8f7c9b6a"  # shaped like a rollouts-pod-template-hash
# Series labels of each TF Serving metric (tools/observability/metrics.py cites tensorflow_serving/servables/
# tensorflow/util.cc): request_count {model_name, status}; request_latency {model_name, API, entrypoint}, its
# _bucket series with Prometheus' `le`.
METRIC_LABELS: dict[str, frozenset[str]] = {
    m.REQUEST_COUNT: frozenset({"model_name", "status"}),
    m.REQUEST_LATENCY + "_bucket": frozenset({"model_name", "API", "entrypoint", "le"}),
}
# Target labels every scraped series gets: `namespace`, `pod`, `container` from the PodMonitor's discovery
# (prometheus-operator Documentation/api-reference/api.md, PodMonitor: "namespace", "pod" and "container"
# target labels), plus the pod labels the relabeling copies (tools/observability/context.py POD_LABELS).
TARGET_LABELS = frozenset({"namespace", "pod", "container"}) | frozenset(t for _, t in obs_context.POD_LABELS)
_SELECTOR_RE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^{}]*)\}")
_MATCHER_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,|$)')
_GROUPING_RE = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def fill_args(query: str) -> str:
    return _ARG_RE.sub(SAMPLE_ARG, query)


def queries(objects: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(template name, metric name, query) of every Prometheus metric of every AnalysisTemplate."""
    out = []
    for obj in objects:
        if obj.get("kind") != "AnalysisTemplate":
            continue
        for metric in (obj.get("spec") or {}).get("metrics") or []:
            prom = ((metric.get("provider") or {}).get("prometheus") or {})
            if "query" in prom:
                out.append((obj["metadata"]["name"], metric.get("name", "?"), str(prom["query"])))
    return out


def name_problems(query: str) -> list[str]:
    """Metric and label names of one (filled) query that TF Serving's series do not carry."""
    problems = []
    selectors = _SELECTOR_RE.findall(query)
    if not selectors:
        problems.append("selects no metric by name{labels}")
    grouping = {label.strip() for group in _GROUPING_RE.findall(query) for label in group.split(",") if label.strip()}
    allowed_grouping = set()
    for metric, body in selectors:
        if metric not in METRIC_LABELS:
            problems.append(f"{metric} is not a TF Serving metric the analysis may use ({', '.join(METRIC_LABELS)})")
            continue
        allowed = METRIC_LABELS[metric] | TARGET_LABELS
        allowed_grouping |= allowed
        matched = _MATCHER_RE.findall(body)
        rest = _MATCHER_RE.sub("", body).strip()
        if rest:
            problems.append(f"{metric}: cannot read the matchers {body!r}")
        for label, _ in matched:
            if label not in allowed:
                problems.append(f"{metric}: label {label} is not on its series ({', '.join(sorted(allowed))})")
    for label in sorted(grouping - allowed_grouping):
        if allowed_grouping:
            problems.append(f"grouping label {label} is not on the series selected")
    return problems


def problems(objects: list[dict[str, Any]]) -> tuple[list[str], int]:
    """(problems, number of queries): promtool parses every query, then the names are checked."""
    found = queries(objects)
    out = []
    for template, metric, query in found:
        out.extend(f"AnalysisTemplate/{template} metric {metric}: {p}" for p in name_problems(fill_args(query)))
    if found:
        rules = [{"record": f"canary_analysis:{re.sub(r'[^A-Za-z0-9_]', '_', t)}:{re.sub(r'[^A-Za-z0-9_]', '_', n)}",
                  "expr": fill_args(q)} for t, n, q in found]
        try:
            obs_checks.check_rule_file([{"name": "canary-analysis", "rules": rules}])
        except UserError as exc:
            out.append(f"promtool: {exc}")
    return out, len(found)
