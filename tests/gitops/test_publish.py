"""make publish against the local file-system backend: refusals, atomicity, resume, immutability."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.model_yaml import write_baseline
from tools import digests, paths, publish
from tools.config import load_config
from tools.errors import UserError
from tools.publish import cli


def config_at(root: Path, uri: str, publish_uri: str | None = None, version: int = 1):
    """root/model.yaml, loaded: the test baseline (resnet, nothing pinned) with this store and model.version."""
    values = {"store.uri": uri, "store.publish_uri": publish_uri, "model.version": version}
    return load_config(write_baseline(root / paths.MODEL_YAML, values))


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_publishes_both_layouts_sums_last_and_identical_is_noop(repo, store, fakes):
    config = config_at(repo, f"file://{store}")
    found = fakes.release(repo, version=2)
    assert publish.publish(config, 2) == {layout: "published" for layout in paths.LAYOUTS}
    for layout, digest in found.items():
        dest = paths.version_dir(store, "resnet", layout, 2)
        assert digests.verify(dest) == []
        assert digests.version_digest(dest) == digest
        assert tree(dest) == tree(paths.version_dir(repo / paths.MODELS_DIR, "resnet", layout, 2))
    before = tree(store)
    assert publish.publish(config, 2) == {layout: "already published" for layout in paths.LAYOUTS}
    assert tree(store) == before


def test_cli_uses_model_version_by_default_and_reports(repo, store, fakes, capsys):
    config_at(repo, f"file://{store}", version=3)
    fakes.release(repo, version=3)
    assert cli.main(["--config", str(repo / paths.MODEL_YAML)]) == 0
    assert "published sha256:" in capsys.readouterr().err
    assert (paths.version_dir(store, "resnet", "channels_first", 3) / paths.DIGEST_FILE).is_file()


def test_interrupted_upload_leaves_version_absent_then_resumes(repo, store, fakes, monkeypatch):
    config = config_at(repo, f"file://{store}")
    fakes.release(repo, version=2)
    real_upload, calls = publish.upload_file, []

    def flaky(fs, local, remote):
        calls.append(remote)
        if len(calls) == 3:
            # A real cut: half the bytes of the third file arrive, then the connection drops.
            Path(remote).write_bytes(Path(local).read_bytes()[: Path(local).stat().st_size // 2])
            raise ConnectionResetError("connection reset by peer")
        real_upload(fs, local, remote)

    monkeypatch.setattr(publish, "upload_file", flaky)
    with pytest.raises(UserError, match=r"stopped: connection reset by peer; the version stays absent"):
        publish.publish(config, 2)
    first = paths.version_dir(store, "resnet", "channels_last", 2)
    assert first.is_dir() and not (first / paths.DIGEST_FILE).exists()
    assert publish.published_sums(paths.store_version_uri(f"file://{store}", "resnet", "channels_last", 2)) is None
    # A stray file from some other partial upload must not survive into the complete version.
    (first / "stale.tmp").write_bytes(b"left over")

    resumed = []
    monkeypatch.setattr(publish, "upload_file", lambda fs, l, r: (resumed.append(r), real_upload(fs, l, r)))
    assert publish.publish(config, 2) == {layout: "published" for layout in paths.LAYOUTS}
    # The two files that arrived whole were kept; the cut one and the rest were uploaded.
    assert len(resumed) == 2 * 6 - 2
    for layout in paths.LAYOUTS:
        assert digests.verify(paths.version_dir(store, "resnet", layout, 2)) == []


def test_different_content_under_a_published_version_is_refused(repo, store, fakes):
    config = config_at(repo, f"file://{store}")
    fakes.release(repo, version=2)
    publish.publish(config, 2)
    before = tree(store)
    fakes.release(repo, version=2, salt="retrained")
    with pytest.raises(UserError, match=r"already holds a different version .* never overwritten"):
        publish.publish(config, 2)
    assert tree(store) == before


def test_refuses_missing_export(repo, store, fakes):
    config = config_at(repo, f"file://{store}")
    fakes.export(repo / paths.MODELS_DIR, "resnet", "channels_last", 2)
    with pytest.raises(UserError, match=r"no channels_first export of resnet v2 at .*: run `make export VERSION=2`"):
        publish.publish(config, 2)
    assert not store.exists()


def test_refuses_an_export_without_sums_or_changed_after_export(repo, store, fakes):
    config = config_at(repo, f"file://{store}")
    fakes.release(repo, version=2)
    pb = paths.version_dir(repo / paths.MODELS_DIR, "resnet", "channels_first", 2) / paths.SAVED_MODEL_PB
    pb.write_bytes(b"tampered")
    with pytest.raises(UserError, match=r"channels_first export .* not usable: saved_model.pb does not match"):
        publish.publish(config, 2)
    (pb.parent / paths.DIGEST_FILE).unlink()
    with pytest.raises(UserError, match=r"SHA256SUMS is missing"):
        publish.publish(config, 2)
    assert not store.exists()


@pytest.mark.parametrize("case, message", [
    ("missing", r"no validation report for resnet v2 \(.* is missing\): run `make validate VERSION=2`"),
    ("failed", r"validation of resnet v2 did not pass: parity \(channels_first\) failed"),
    ("stale", r"validated channels_last sha256:.*but the export on disk is sha256:.* \(exported again since\?\)"),
])
def test_refuses_without_a_passing_report_for_these_bytes(repo, store, fakes, case, message):
    config = config_at(repo, f"file://{store}")
    found = fakes.release(repo, version=2, passed=case != "failed")
    if case == "missing":
        paths.validation_report(repo / paths.REPORTS_DIR, "resnet", 2, "json").unlink()
    if case == "stale":
        fakes.export(repo / paths.MODELS_DIR, "resnet", "channels_last", 2, salt="again")
        assert found["channels_last"] != digests.version_digest(
            paths.version_dir(repo / paths.MODELS_DIR, "resnet", "channels_last", 2))
    with pytest.raises(UserError, match=message):
        publish.publish(config, 2)
    assert not store.exists()


def test_pvc_store_needs_publish_uri(repo, store, fakes):
    fakes.release(repo, version=2)
    config = config_at(repo, "pvc://models/resnet")
    with pytest.raises(UserError, match=r"store.uri is pvc://models/resnet.*set store.publish_uri"):
        publish.publish(config, 2)
    config = config_at(repo, "pvc://models/resnet", publish_uri=f"file://{store}")
    assert set(publish.publish(config, 2).values()) == {"published"}


def test_cli_error_is_one_line(repo, store, capsys):
    config_at(repo, f"file://{store}")
    assert cli.main(["--config", str(repo / paths.MODEL_YAML), "--version", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no channels_last export of resnet v7")


def test_placeholder_store_is_refused_before_any_network_call(repo, store, fakes, monkeypatch):
    # issue 13: the bucket model.yaml ships with retried for ~50 s with pages of tracebacks.
    import fsspec

    def no_network(*args, **kwargs):
        raise AssertionError("publish reached the network")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_network)
    monkeypatch.setattr(fsspec, "filesystem", no_network)
    fakes.release(repo, version=2)
    config = config_at(repo, "gs://your-team-models/tf-serving")
    with pytest.raises(UserError, match=r"store.uri is gs://your-team-models/tf-serving, the placeholder"):
        publish.publish(config, 2)


class FakeAzureBlob:
    """Stands in for adlfs's AzureBlobFileSystem (the `az` protocol): adlfs's own URL parsing (account from
    `<container>@<account>.blob.core.windows.net`, then `<container>/<path>`), a local folder per account as the
    blob service, and the accounts it was opened for. No network."""

    @staticmethod
    def make(tmp_path: Path):
        from adlfs import AzureBlobFileSystem
        from fsspec.implementations.local import LocalFileSystem

        class Fake(LocalFileSystem):
            protocol = ("az",)
            accounts: list = []

            def __init__(self, account_name=None, **kwargs):
                super().__init__(auto_mkdir=True)
                Fake.accounts.append(account_name)

            _get_kwargs_from_urls = staticmethod(AzureBlobFileSystem._get_kwargs_from_urls)

            @classmethod
            def _strip_protocol(cls, path):
                if isinstance(path, str) and path.startswith("az://"):
                    account = AzureBlobFileSystem._get_kwargs_from_urls(path).get("account_name") or "NO-ACCOUNT"
                    return f"{tmp_path / 'blob' / account}/{AzureBlobFileSystem._strip_protocol(path)}"
                return super()._strip_protocol(path)

        return Fake


@pytest.fixture
def fake_azure(tmp_path, monkeypatch):
    import importlib

    fake = FakeAzureBlob.make(tmp_path)
    registry = importlib.import_module("fsspec.registry")
    monkeypatch.setitem(registry._registry, "az", fake)
    fake.clear_instance_cache()
    return fake


def test_publishes_to_an_azure_blob_container_of_the_configured_account(repo, tmp_path, fakes, fake_azure):
    config = load_config(write_baseline(repo / paths.MODEL_YAML, {
        "store.uri": "az://models/tf-serving", "store.azure_account": "teamstore", "model.version": 2}))
    found = fakes.release(repo, version=2)
    assert publish.upload_uri(config) == "az://models@teamstore.blob.core.windows.net/tf-serving"

    assert publish.publish(config, 2) == {layout: "published" for layout in paths.LAYOUTS}

    assert set(fake_azure.accounts) == {"teamstore"}
    container = tmp_path / "blob" / "teamstore" / "models" / "tf-serving"
    for layout, digest in found.items():
        dest = paths.version_dir(container, "resnet", layout, 2)
        assert digests.verify(dest) == [] and digests.version_digest(dest) == digest
    assert publish.publish(config, 2) == {layout: "already published" for layout in paths.LAYOUTS}


def test_placeholder_azure_container_is_refused_before_any_network_call(repo, fakes, monkeypatch):
    import fsspec

    def no_network(*args, **kwargs):
        raise AssertionError("publish reached the network")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_network)
    monkeypatch.setattr(fsspec, "filesystem", no_network)
    fakes.release(repo, version=2)
    config = load_config(write_baseline(repo / paths.MODEL_YAML, {
        "store.uri": "az://your-team-models/tf-serving", "store.azure_account": "teamstore"}))
    with pytest.raises(UserError, match=r"store.uri is az://your-team-models/tf-serving, the placeholder"):
        publish.publish(config, 2)
