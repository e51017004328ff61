"""Every alert of the rendered PrometheusRule through `promtool test rules`, firing and not firing, and the
rendered rule files through `promtool check rules`. promtool is Debian's prometheus package (`make promtool`);
without it these tests fail with one line saying so."""
import copy
import functools
import subprocess

import pytest
import yaml

from tests.observability import rule_cases
from tests.observability.helpers import config, require_binary
from tools import paths, render
from tools.observability import metrics as m
from tools.render import names

CASES = rule_cases.cases()


@functools.lru_cache(maxsize=None)
def _rendered_rules(target: str) -> str:
    files = render.render_files(config(), paths.REPO_ROOT)
    return files[f"{paths.OVERLAYS_DIR}/{target}/{names.OBSERVABILITY_COMPONENT}/prometheusrule.yaml"]


def rendered_rules(target: str) -> dict:
    return copy.deepcopy(yaml.safe_load(_rendered_rules(target)))


def rule_file(tmp_path, target="gpu") -> str:
    """The rendered groups as a Prometheus rule file. Annotations are dropped: promtool compares them verbatim,
    and they are prose (their templates are checked by `promtool check rules` below)."""
    groups = rendered_rules(target)["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return "rules.yaml"


def promtool(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_alert_has_a_firing_and_a_quiet_case():
    alerts = {r["alert"] for g in rendered_rules("gpu")["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {c.alert for c in CASES if c.fires} == alerts
    assert {c.alert for c in CASES if not c.fires} == alerts


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alert(tmp_path, case):
    test_file = {"rule_files": [rule_file(tmp_path)], "evaluation_interval": "1m", "tests": [case.promtool_test()]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test_file, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(tmp_path):
    """The harness can fail: a quiet case expected to fire is reported by promtool."""
    case = next(c for c in CASES if c.alert == "TFServingErrorRatioHigh" and not c.fires)
    wrong = rule_cases.Case(case.alert, True, case.eval_time, case.input_series, {**rule_cases.BY, "severity": "warning"})
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": [rule_file(tmp_path)], "evaluation_interval": "1m", "tests": [wrong.promtool_test()]}))
    result = promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "TFServingErrorRatioHigh" in result.stdout + result.stderr


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_promtool_checks_the_rendered_rules_with_annotations(tmp_path, target):
    groups = rendered_rules(target)["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_the_latency_objective_is_measured_at_a_real_bucket_bound():
    rules = rendered_rules("gpu")["spec"]["groups"][0]["rules"]
    slow = next(r for r in rules if r["record"] == "tfserving:request_latency_slow:ratio_rate5m")
    # 500 ms falls between TF Serving's buckets 393464 and 708235 us: the objective is measured at 708235.
    assert "le=~`708235|708235\\.0`" in slow["expr"]
    assert m.le_text(m.bucket_at_least(500_000, m.REQUEST_LATENCY_BUCKETS)) == "708235"
