"""The first version of a fresh repository can be pinned (`make bump VERSION=<model.version>` while nothing is
pinned), the pin and the next bump are each rolled back by a revert, and a store whose files no longer match
their SHA256SUMS is reported as corrupt by publish and refused by the bump, naming the file.

Same setup as test_bump.py: a temporary clone with a bare remote, fake exports and reports, a file:// store
and a recording `gh`."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.gitops.test_bump import GIT_ENV, clone, error_line, git, template  # noqa: F401 (fixtures)
from tools import paths, publish, render
from tools.config import load_config
from tools.errors import UserError

REPO = Path(__file__).resolve().parents[2]
FETCH_MODEL = REPO / paths.BASE_DIR / "fetch-model.sh"


def merge(clone, branch: str) -> None:
    """What merging the pull request does: main fast-forwards to the branch."""
    git(clone.root, "merge", "--quiet", "--ff-only", branch)
    git(clone.root, "push", "--quiet", "origin", "main")


def revert(clone, commit: str) -> None:
    """The rollback pull request, merged: a revert commit on main."""
    subprocess.run(["git", "revert", "--no-edit", commit], cwd=clone.root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def model_env(root: Path, target: str) -> dict[str, str]:
    """The init container's environment, from the overlay's rendered tf-serving-model ConfigMap literals."""
    text = (root / paths.OVERLAYS_DIR / target / paths.KUSTOMIZATION_FILE).read_text()
    env = {}
    for line in text.splitlines():
        line = line.strip().lstrip("- ").strip('"')
        if "=" in line and line.split("=", 1)[0].startswith("MODEL_"):
            key, value = line.split("=", 1)
            env[key] = value
    return env


@pytest.mark.slow
def test_pin_the_first_version_bump_to_2_then_revert_each(clone, tmp_path):
    v1 = clone.release(1)
    # A fresh repository: version 1, nothing pinned. The one command the init container's error names pins it.
    result = clone.bump("1")
    assert result.returncode == 0, result.stderr
    branch = "model/resnet-v1"
    pinned = load_config_at(clone, branch)
    assert (pinned.model.version, pinned.model.digests) == (1, v1)
    [call] = clone.gh_calls()
    argv = call["argv"]
    assert argv[argv.index("--title") + 1] == "model: pin resnet v1"
    assert "Pins **resnet v1** for the first time" in call["body"]
    assert "the revert leaves model.digests empty again" in call["body"]
    merge(clone, branch)
    pin_commit = git(clone.root, "rev-parse", "HEAD")

    # Once pinned, version 1 is no longer a first pin.
    again = clone.bump("1")
    assert again.returncode == 2 and "model.version is already 1: the new version must be greater" in \
        error_line(again)

    v2 = clone.release(2)
    result = clone.bump("2")
    assert result.returncode == 0, result.stderr
    merge(clone, "model/resnet-v2")
    assert load_config(clone.root / paths.MODEL_YAML).model.digests == v2

    # Rollback of v2: back to v1 and its digests, overlays included.
    revert(clone, "HEAD")
    config = load_config(clone.root / paths.MODEL_YAML)
    assert (config.model.version, config.model.digests) == (1, v1)
    assert model_env(clone.root, "cpu")["MODEL_DIGEST"] == v1["channels_last"]

    # Rollback of the first pin: nothing pinned again, the committed overlays match model.yaml, and the init
    # container refuses with the command that pins it.
    revert(clone, pin_commit)
    config = load_config(clone.root / paths.MODEL_YAML)
    assert (config.model.version, config.model.digests) == (1, {})
    assert all((clone.root / rel).read_text() == text for rel, text in render.render_files(config, clone.root).items())
    env = model_env(clone.root, "cpu")
    assert env["MODEL_DIGEST"] == ""
    run = subprocess.run(["sh", str(FETCH_MODEL)], capture_output=True, text=True,
                         env={**env, "PATH": os.environ["PATH"], "MODEL_BASE_PATH": str(tmp_path / "models")})
    assert run.returncode == 1
    assert "model.yaml pins no digest for channels_last" in run.stderr
    assert "`make bump VERSION=1`" in run.stderr
    assert git(clone.root, "status", "--porcelain") == ""


def load_config_at(clone, branch: str):
    text = git(clone.root, "show", f"{branch}:{paths.MODEL_YAML}")
    path = clone.tmp / f"model-{branch.replace('/', '-')}.yaml"
    path.write_text(text)
    return load_config(path)


def test_a_corrupt_published_file_is_reported_by_publish_and_refused_by_the_bump(clone):
    clone.release(2)
    config = load_config(clone.root / paths.MODEL_YAML)
    dest = Path(paths.store_version_uri(str(clone.store), "resnet", "channels_last", 2))
    labels = dest / paths.ASSETS_DIR / paths.LABELS_FILE
    data = bytearray(labels.read_bytes())
    data[0] ^= 1  # one byte
    labels.write_bytes(bytes(data))

    with pytest.raises(UserError, match=r"channels_last/2 is published but corrupt: assets/labels.txt does not "
                                        r"match its sha256 in SHA256SUMS"):
        publish.publish(config, 2, log=lambda line: None)

    before = clone.state()
    result = clone.bump("2")
    assert result.returncode == 2
    assert "is published but corrupt: assets/labels.txt does not match" in error_line(result)
    assert clone.state() == before and clone.gh_calls() == []

    # The repair the message names: drop SHA256SUMS, publish again; only the damaged file is uploaded again.
    (dest / paths.DIGEST_FILE).unlink()
    lines = []
    assert publish.publish(config, 2, log=lines.append)["channels_last"] == "published"
    assert any("1 files uploaded" in line for line in lines)
    assert publish.verify_published(f"file://{dest}", (dest / paths.DIGEST_FILE).read_bytes()) == []


def test_an_unlisted_file_in_a_published_version_is_corruption(clone):
    clone.release(2)
    config = load_config(clone.root / paths.MODEL_YAML)
    dest = Path(paths.store_version_uri(str(clone.store), "resnet", "channels_first", 2))
    (dest / "extra.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="channels_first/2 is published but corrupt: extra.bin is not listed"):
        publish.publish(config, 2, log=lambda line: None)
