"""Golden files: every object of every built overlay, one file each, so a review shows any manifest change.

    pytest tests/k8s/test_golden.py --update-golden    # rewrite tests/k8s/golden/ after an intended change
"""
from __future__ import annotations

import difflib

import yaml

from tests.k8s.helpers import REPO
from tools import paths
from tools.check import golden


def test_built_overlays_match_their_golden_files(request):
    if request.config.getoption("--update-golden"):
        golden.write(REPO)
    problems = []
    want = golden.expected(REPO)
    for rel, state in golden.differences(REPO):
        if state != "changed":
            problems.append(f"{state} golden file {rel}")
            continue
        diff = difflib.unified_diff((REPO / rel).read_text().splitlines(), want[rel].splitlines(), rel, "built",
                                    lineterm="", n=2)
        problems.append("\n".join(list(diff)[:40]))
    assert not problems, ("the built overlays differ from their golden files; if the change is intended, run "
                          "`pytest tests/k8s/test_golden.py --update-golden` and commit the result:\n"
                          + "\n".join(problems))


def test_one_golden_file_per_built_object_that_parses_back_to_it(built):
    for overlay, objects in built.items():
        files = golden.dump(objects, overlay)
        assert len(files) == len(objects)
        for name, text in files.items():
            assert yaml.safe_load(text) in objects, name


def test_write_replaces_the_golden_folder_and_reports_what_changed(repo_copy):
    golden_dir = repo_copy / paths.GOLDEN_DIR
    (golden_dir / "cpu").mkdir(parents=True)
    (golden_dir / "cpu" / "stale.yaml").write_text("kind: Gone\n")
    changed = golden.write(repo_copy)
    assert f"{paths.GOLDEN_DIR}/cpu/stale.yaml" in changed
    assert not (golden_dir / "cpu" / "stale.yaml").exists()
    assert (golden_dir / "gpu" / "deployment-tf-serving.yaml").is_file()
    assert golden.differences(repo_copy) == [] and golden.write(repo_copy) == []
