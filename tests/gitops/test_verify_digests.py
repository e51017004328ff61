"""`make verify-digests`'s decisions, in process with a small stand-in exporter: what it compares, what it refuses,
what it says. The real exports and the CLI in a user's repository run in tests/gitops/test_own_model.py, whose
pinned digests are re-derived from the source fetched from the store; exports being byte-reproducible is
tests/export/test_reproducible.py."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import base_config_data
from tests.gitops.conftest import make_export
from tools import paths
from tools.config import parse_config
from tools.errors import UserError
from tools.verify_digests import verify_digests

SOURCE = b"the reviewed model"
SHA = hashlib.sha256(SOURCE).hexdigest()


@pytest.fixture
def exporter(monkeypatch):
    """export.api.export_model replaced by small fake exports (tests/gitops/conftest.py) whose bytes depend on the
    model's name, version and layout, as a real export depends on its source and settings, and on the layouts the
    same call exported before it, as a real export did before export/canonical.py (TensorFlow's process-wide
    function counter): verify-digests must re-export as `make export` does. Records each call's arguments."""
    import export.api

    calls = []

    def fake_export_model(config, version=None, output_dir=None, layouts=paths.LAYOUTS, verbose=True,
                          sources_root=None):
        calls.append({"version": version, "output_dir": output_dir, "layouts": layouts})
        for i, layout in enumerate(layouts):
            make_export(output_dir, config.model.name, layout, version, salt=_after(layouts[:i]))
        return {layout: paths.version_dir(output_dir, config.model.name, layout, version) for layout in layouts}

    monkeypatch.setattr(export.api, "export_model", fake_export_model)
    return calls


def _after(earlier) -> str:
    return f" after {','.join(earlier)}" if earlier else ""


def expected_digests(tmp_path, name="mine", version=3) -> dict[str, str]:
    """What `make export` pins: every layout, in order, from one process."""
    return {layout: make_export(tmp_path / "expected", name, layout, version, salt=_after(paths.LAYOUTS[:i]))
            for i, layout in enumerate(paths.LAYOUTS)}


def config_for(tmp_path, pins: dict[str, str], sha256: str | None = SHA, source: bytes | None = SOURCE,
               stored: bool = False, targets: tuple[str, ...] | None = None):
    """model.yaml of a repository in tmp_path/repo: model `mine` v3 from mine.keras (written with `source`, or
    absent when None), pinning `pins` and `sha256`; the store a folder holding the source when `stored`."""
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir(exist_ok=True)
    if source is not None:
        (repo / "mine.keras").write_bytes(source)
    if stored:
        target = Path(paths.store_source_uri(str(store), "mine", SHA, ".keras"))
        target.parent.mkdir(parents=True)
        target.write_bytes(SOURCE)
    data = base_config_data()
    data["model"].update(name="mine", version=3, digests=pins, preprocessing="none", labels=None)
    data["model"]["source"] = {"model_file": "mine.keras", "sha256": sha256}
    data["store"] = {"uri": f"file://{store}", "publish_uri": None}
    if targets is not None:
        data["targets"] = {name: data["targets"][name] for name in targets}
    return parse_config(data, base=repo)


def test_equal_digests_pass_and_each_layout_is_named(tmp_path, exporter):
    pins = expected_digests(tmp_path)
    lines = []
    outcome = verify_digests(config_for(tmp_path, pins), log=lines.append)
    assert outcome.digests == pins and outcome.version == 3 and outcome.source_sha256 == SHA
    assert [f"{layout}: {pins[layout]} re-derived from source sha256 {SHA}: equals model.digests.{layout}"
            for layout in paths.LAYOUTS] == lines
    [call] = exporter
    assert call["version"] == 3 and call["layouts"] == tuple(paths.LAYOUTS)
    assert not call["output_dir"].exists()  # a scratch directory, gone afterwards
    assert not (tmp_path / "repo" / paths.MODELS_DIR).exists()  # build/models untouched


def test_a_fork_serving_one_layout_re_exports_every_layout_and_compares_the_served_one(tmp_path, exporter):
    """A GPU-only fork pins channels_first as `make export` wrote it, after channels_last: verify-digests exports
    what `make export` exports, so even a layout whose bytes depended on the one before it (the tiny model's
    channels_first before export/canonical.py: sha256 c129ec41... alone, 14ddd5cd... after channels_last)
    re-derives its pin."""
    pins = expected_digests(tmp_path)
    lines = []
    config = config_for(tmp_path, {"channels_first": pins["channels_first"]}, targets=("gpu",))
    outcome = verify_digests(config, log=lines.append)
    assert outcome.digests == {"channels_first": pins["channels_first"]}
    assert lines == [f"channels_first: {pins['channels_first']} re-derived from source sha256 {SHA}: equals "
                     "model.digests.channels_first"]
    [call] = exporter
    assert call["layouts"] == tuple(paths.LAYOUTS)


def test_a_wrong_pin_is_refused_naming_that_layout_and_both_digests(tmp_path, exporter):
    pins = expected_digests(tmp_path)
    swapped = {"channels_last": pins["channels_first"], "channels_first": pins["channels_first"]}
    with pytest.raises(UserError) as refused:
        verify_digests(config_for(tmp_path, swapped), log=lambda line: None)
    message = str(refused.value)
    assert message.startswith("the pinned digests are not what mine v3 exports to with TensorFlow ")
    assert message.endswith(f": channels_last: re-exported {pins['channels_last']}, model.yaml pins "
                            f"{pins['channels_first']} (model.digests.channels_last)")
    assert "channels_first:" not in message


def test_a_local_source_with_other_bytes_than_the_pin_is_refused_before_any_export(tmp_path, exporter):
    other = b"not the reviewed model"
    with pytest.raises(UserError, match=f"mine.keras has sha256 {hashlib.sha256(other).hexdigest()}, but "
                                        f"model.source.sha256 pins {SHA}"):
        verify_digests(config_for(tmp_path, expected_digests(tmp_path), source=other))
    assert exporter == []


def test_an_absent_source_is_fetched_from_the_store_into_the_cache(tmp_path, exporter):
    lines = []
    verify_digests(config_for(tmp_path, expected_digests(tmp_path), source=None, stored=True), log=lines.append)
    assert lines[0] == f"mine.keras is absent here: fetching sha256 {SHA[:12]} from the model store"
    assert paths.source_cache_file(tmp_path / "repo", SHA, ".keras").read_bytes() == SOURCE


def test_nothing_pinned_is_an_error_unless_allowed(tmp_path, exporter):
    config = config_for(tmp_path, {})
    with pytest.raises(UserError, match=r"model.digests pins nothing: nothing to re-derive; pin v3 first"):
        verify_digests(config)
    lines = []
    assert verify_digests(config, allow_unpinned=True, log=lines.append) is None
    assert lines == ["model.digests pins nothing yet: nothing to re-derive (pin v3 with `make bump VERSION=3`)"]
    assert exporter == []


def test_a_served_layout_without_a_pin_and_a_source_without_a_sha256_are_refused(tmp_path, exporter):
    pins = expected_digests(tmp_path)
    with pytest.raises(UserError, match="model.digests pins no digest for channels_first, which a target serves"):
        verify_digests(config_for(tmp_path, {"channels_last": pins["channels_last"]}))
    with pytest.raises(UserError, match="model.source.model_file is set but model.source.sha256 pins nothing"):
        verify_digests(config_for(tmp_path, pins, sha256=None))
    assert exporter == []
