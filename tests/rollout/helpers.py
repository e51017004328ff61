"""Helpers of the canary tests: model.yaml data with a canary target, rendered and built in a throw-away copy."""
from __future__ import annotations

import copy

from tests.conftest import base_config_data

CANARY = {"strategy": "canary", "max_surge": 0, "max_unavailable": 1,
          "canary": {"steps": [{"set_weight": 50}, {"pause": "10m"}, {"set_weight": 75}, {"pause": None}],
                     "analysis": {"max_error_ratio": 0.02, "max_p99_latency_ms": 800, "golden_set": True,
                                  "interval": "2m", "failure_limit": 1}}}


def canary_data(target: str = "gpu", keda: bool = True, **canary) -> dict:
    """The repository's model.yaml with `target` rolled out as a canary (the other targets stay rolling)."""
    data = copy.deepcopy(base_config_data())
    rollout = copy.deepcopy(CANARY)
    rollout["canary"].update(canary)
    data["targets"][target]["rollout"] = rollout
    data.setdefault("observability", {})["keda"] = keda
    return data
