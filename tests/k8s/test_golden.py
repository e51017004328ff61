"""Golden files: every object of every built overlay, one file each, so a review shows any manifest change.

    pytest tests/k8s/test_golden.py --update-golden    # rewrite tests/k8s/golden/ after an intended change
"""
from __future__ import annotations

import difflib
import shutil

import pytest
import yaml

from tests.k8s.helpers import REPO
from tools import config as config_mod
from tools import paths

GOLDEN = REPO / paths.GOLDEN_DIR
TARGETS = list(config_mod.load_config(REPO / paths.MODEL_YAML).targets)


class _Dumper(yaml.SafeDumper):
    pass


# Scripts and TF Serving configs inside ConfigMaps stay readable as YAML block scalars.
_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def golden_files(objects: list[dict], overlay: str) -> dict[str, str]:
    header = (f"# One object of `kustomize build {paths.OVERLAYS_DIR}/{overlay}`. Do not edit: "
              "`pytest tests/k8s/test_golden.py --update-golden` rewrites it.\n")
    files: dict[str, str] = {}
    for obj in objects:
        name = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        assert name not in files, f"two objects would share {name}"
        files[name] = header + yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return files


@pytest.mark.parametrize("overlay", TARGETS)
def test_built_overlay_matches_its_golden_files(built, overlay, request):
    expected = golden_files(built[overlay], overlay)
    folder = GOLDEN / overlay
    if request.config.getoption("--update-golden"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, text in expected.items():
            (folder / name).write_text(text)
        for stale in GOLDEN.iterdir():
            if stale.is_dir() and stale.name not in TARGETS:
                shutil.rmtree(stale)
        return
    actual = {p.name: p.read_text() for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}
    problems = [f"missing golden file {paths.GOLDEN_DIR}/{overlay}/{n}" for n in sorted(set(expected) - set(actual))]
    problems += [f"stale golden file {paths.GOLDEN_DIR}/{overlay}/{n}" for n in sorted(set(actual) - set(expected))]
    for name in sorted(set(expected) & set(actual)):
        if expected[name] != actual[name]:
            diff = difflib.unified_diff(actual[name].splitlines(), expected[name].splitlines(),
                                        f"golden/{overlay}/{name}", "built", lineterm="", n=2)
            problems.append("\n".join(list(diff)[:40]))
    assert not problems, ("the built overlay differs from its golden files; if the change is intended, run "
                          "`pytest tests/k8s/test_golden.py --update-golden` and commit the result:\n"
                          + "\n".join(problems))


def test_golden_files_parse_back_to_the_built_objects(built):
    for overlay in TARGETS:
        for name, text in golden_files(built[overlay], overlay).items():
            obj = yaml.safe_load(text)
            assert obj in built[overlay], name
