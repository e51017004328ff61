"""Each overlay's golden set: rendered from the validation report of exactly the pinned digest, carried on a clean
clone, a schema-valid ConfigMap under the size limit that the smoke-test Job mounts."""
from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from tests.k8s.helpers import copy_repo, write_config
from tools import kustomize, paths, render
from tools.check import schema
from tools.errors import UserError
from tools.goldenset import overlay


@pytest.fixture
def pinned_repo(tmp_path, tiny_golden):
    """A repository copy pinning the tiny export's digests, with its report holding the golden set (tiny_golden,
    renamed to resnet v1)."""
    root = copy_repo(tmp_path / "repo")
    report = json.loads(paths.validation_report(tiny_golden[1], "tiny", 1, "json").read_text())
    report["model"] = "resnet"
    reports = root / paths.REPORTS_DIR
    reports.mkdir(parents=True)
    paths.validation_report(reports, "resnet", 1, "json").write_text(json.dumps(report))
    data = yaml.safe_load((root / paths.MODEL_YAML).read_text())
    data["model"]["digests"] = {layout: e["digest"] for layout, e in report["exports"].items()}
    write_config(root / paths.MODEL_YAML, data)
    render.render(root)
    return root, report, data


def expected_of(root, target):
    return json.loads((overlay.golden_dir(root, f"{paths.OVERLAYS_DIR}/{target}") / paths.GOLDEN_EXPECTED_FILE)
                      .read_text())


def test_unpinned_overlays_get_a_placeholder_the_smoke_test_refuses():
    committed = json.loads((paths.REPO_ROOT / paths.OVERLAYS_DIR / "cpu" / paths.GOLDEN_SET_DIR /
                            paths.GOLDEN_EXPECTED_FILE).read_text())
    assert committed["images"] == [] and committed["note"] == overlay.MISSING and committed["digest"] is None


def test_pinned_digest_renders_that_layouts_answers_with_the_targets_tolerance(pinned_repo):
    root, report, data = pinned_repo
    for target, layout in (("cpu", "channels_last"), ("gpu", "channels_first")):
        expected = expected_of(root, target)
        recorded = report["golden_set"]["layouts"][layout]
        assert (expected["model"], expected["version"], expected["layout"], expected["digest"]) == \
            ("resnet", 1, layout, recorded["digest"])
        tolerance = data["targets"][target]["golden_tolerance"]
        assert expected["tolerance"] == tolerance
        assert [(i["name"], i["classes"], i["labels"], i["probabilities"]) for i in expected["images"]] == \
            [(a["name"], a["classes"], a["labels"], a["probabilities"]) for a in recorded["answers"]]
        assert [i["stable"] for i in expected["images"]] == \
            [a["margin"] is not None and a["margin"] >= tolerance["min_top1_margin"] for a in recorded["answers"]]
        images = json.loads((overlay.golden_dir(root, f"{paths.OVERLAYS_DIR}/{target}") /
                             paths.GOLDEN_IMAGES_FILE).read_text())["images"]
        assert images == {name: i["data"] for name, i in report["golden_set"]["images"].items()}


def test_a_clean_clone_re_renders_the_committed_golden_set_and_a_new_digest_drops_it(pinned_repo):
    root, _, data = pinned_repo
    shutil.rmtree(root / paths.BUILD_DIR)  # no report: what CI has
    assert render.drift(root) == []
    data = copy.deepcopy(data)
    data["model"]["digests"]["channels_last"] = "sha256:" + "f" * 64  # pinned by hand, never validated
    write_config(root / paths.MODEL_YAML, data)
    render.render(root)
    assert expected_of(root, "cpu")["images"] == [] and expected_of(root, "gpu")["images"]


def test_changing_a_tolerance_re_decides_which_images_are_stable(pinned_repo):
    root, _, data = pinned_repo
    data = copy.deepcopy(data)
    data["targets"]["cpu"]["golden_tolerance"] = {"probability": 0.4, "min_top1_margin": 0.999}
    write_config(root / paths.MODEL_YAML, data)
    render.render(root)
    expected = expected_of(root, "cpu")
    assert expected["tolerance"]["probability"] == 0.4 and not any(i["stable"] for i in expected["images"])


def test_the_built_configmap_is_schema_valid_under_the_limit_and_mounted_by_the_job(pinned_repo):
    root, report, _ = pinned_repo
    for target in ("cpu", "gpu"):
        objs = kustomize.build(root / paths.OVERLAYS_DIR / target)
        [cm] = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("tf-serving-golden-set-")]
        assert schema.validate_objects([cm]).errors == []
        assert set(cm["data"]) == {paths.GOLDEN_EXPECTED_FILE, paths.GOLDEN_IMAGES_FILE}
        size = overlay.configmap_bytes(cm["data"][paths.GOLDEN_EXPECTED_FILE], cm["data"][paths.GOLDEN_IMAGES_FILE])
        assert 0 < size <= overlay.LIMIT_BYTES
        assert len(json.dumps(cm).encode()) < 262144  # the annotation limit of a client-side apply
        [job] = [o for o in objs if o["kind"] == "Job"]
        pod = job["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if v["name"] == "golden-set"]
        assert volume["configMap"]["name"] == cm["metadata"]["name"]
        [container] = pod["containers"]
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "golden-set"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SMOKE_GOLDEN_DIR"] == mount["mountPath"] and mount["readOnly"] is True


def test_a_golden_set_over_the_limit_is_refused_naming_the_largest_images(tiny_export, tiny_golden):
    golden = copy.deepcopy(tiny_golden[0].golden_set)
    name = next(iter(golden["images"]))
    golden["images"][name]["data"] = "A" * (overlay.LIMIT_BYTES + 1)
    golden["images"][name]["bytes"] = overlay.LIMIT_BYTES
    target = tiny_export.config.targets["cpu"]
    with pytest.raises(UserError, match=rf"over the 200 KiB a ConfigMap applied by Argo CD can hold; the largest "
                                        rf"images: {name} \(200 KiB\)"):
        overlay.check_size(golden, "channels_last", tiny_export.config, target)
    size, limit = overlay.check_size(golden, "channels_last", tiny_export.config, target, raise_over=False)
    assert size > limit == overlay.LIMIT_BYTES
