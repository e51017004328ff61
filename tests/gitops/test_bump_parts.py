"""The pieces of the bump that need no git: the round-trip model.yaml edit and the manifest summary."""
from __future__ import annotations

import difflib

from ruamel.yaml import YAML

from tests.model_yaml import baseline_text
from tools.bump import manifest_diff
from tools.bump.model_yaml import set_version
from tools.config import parse_config

A, B, C = ("sha256:" + c * 64 for c in "abc")


def changed_lines(old: str, new: str) -> list[str]:
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_first_bump_keeps_every_comment_quote_and_blank_line():
    old = baseline_text()  # this repository's model.yaml, unbumped
    new = set_version(old, 2, {"channels_last": A, "channels_first": B})
    assert changed_lines(old, new) == [
        "-  version: 1                    # the version every cluster serves (a positive integer)",
        "+  version: 2                    # the version every cluster serves (a positive integer)",
        "-  digests: {}                   # sha256 of each layout's SHA256SUMS, pinned by `make bump`",
        "+  digests:                      # sha256 of each layout's SHA256SUMS, pinned by `make bump`",
        f"+    channels_last: {A}",
        f"+    channels_first: {B}",
    ]
    assert "\n    channels_first: " + B + "\n\nstore:\n" in new
    model = parse_config(YAML(typ="safe", pure=True).load(new)).model
    assert (model.version, model.digests) == (2, {"channels_last": A, "channels_first": B})


def test_later_bumps_edit_in_place_and_keep_the_blank_line_last():
    second = set_version(baseline_text(), 2, {"channels_last": A})
    third = set_version(second, 3, {"channels_last": C, "channels_first": B})
    assert changed_lines(second, third) == [
        "-  version: 2                    # the version every cluster serves (a positive integer)",
        "+  version: 3                    # the version every cluster serves (a positive integer)",
        f"-    channels_last: {A}", f"+    channels_last: {C}", f"+    channels_first: {B}"]
    fourth = set_version(third, 4, {"channels_first": A})
    assert "  digests:                      # sha256 of each layout's SHA256SUMS, pinned by `make bump`\n" \
           f"    channels_first: {A}\n\nstore:" in fourth


def obj(kind, name, **rest):
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, **rest}


def test_summary_pairs_generated_configmaps_and_hides_followed_references():
    before = [obj("ConfigMap", "model-aaaaaaaaaa", data={"MODEL_VERSION": "1", "MODEL_DIGEST": ""}),
              obj("Deployment", "srv", spec={"containers": [{"name": "tf", "envFrom": [{"ref": "model-aaaaaaaaaa"}],
                                                              "image": "tf:1"}]}),
              obj("Job", "smoke", spec={"ref": "model-aaaaaaaaaa"}),
              obj("Service", "srv", spec={"port": 8501}),
              obj("Secret", "old")]
    after = [obj("ConfigMap", "model-bbbbbbbbbb", data={"MODEL_VERSION": "2", "MODEL_DIGEST": A}),
             obj("Deployment", "srv", spec={"containers": [{"name": "tf", "envFrom": [{"ref": "model-bbbbbbbbbb"}],
                                                             "image": "tf:2"}]}),
             obj("Job", "smoke", spec={"ref": "model-bbbbbbbbbb"}),
             obj("Service", "srv", spec={"port": 8501}),
             obj("PodDisruptionBudget", "new")]
    assert manifest_diff.summarize(before, after) == [
        f"- `ConfigMap/model-aaaaaaaaaa` → `model-bbbbbbbbbb`: `data.MODEL_DIGEST`: `(empty)` → `{A}`; "
        "`data.MODEL_VERSION`: `1` → `2`",
        "- `Deployment/srv`: `spec.containers[tf].image`: `tf:1` → `tf:2`; points to the renamed ConfigMaps",
        "- `Job/smoke`: points to the renamed ConfigMaps",
        "- added `PodDisruptionBudget/new`",
        "- removed `Secret/old`",
    ]
    assert manifest_diff.summarize(before, before) == []


def test_multiline_values_show_changed_lines_without_comment_noise():
    old = obj("ConfigMap", "c", data={"models.config": "# serve version 1\nversions: 1\nname: resnet\n"})
    new = obj("ConfigMap", "c", data={"models.config": "# serve version 2\nversions: 2\nname: resnet\n"})
    assert manifest_diff.summarize([old], [new]) == \
        ["- `ConfigMap/c`: `data.models.config`: `- versions: 1`; `+ versions: 2`"]
