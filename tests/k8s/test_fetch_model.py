"""The init step's fetch-and-verify script (k8s/base/fetch-model.sh), run with the local POSIX sh against a
file-system model store laid out as `make publish` and the exporter write it."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tools import digests, paths

SCRIPT = paths.REPO_ROOT / paths.BASE_DIR / "fetch-model.sh"
NAME, LAYOUT, VERSION = "resnet", "channels_last", 3


def publish(store: Path, version: int = VERSION) -> tuple[Path, str]:
    """A version as the exporter writes it (SHA256SUMS last); returns its folder and its digest."""
    root = paths.version_dir(store, NAME, LAYOUT, version)
    files = {
        paths.SAVED_MODEL_PB: b"\x08\x01saved model bytes",
        f"{paths.VARIABLES_DIR}/variables.index": b"index",
        f"{paths.VARIABLES_DIR}/variables.data-00000-of-00001": os.urandom(4096),
        f"{paths.ASSETS_DIR}/{paths.LABELS_FILE}": b"tench\ngoldfish\n",
        f"{paths.ASSETS_EXTRA_DIR}/{paths.WARMUP_FILE}": b"warmup records",
        f"{paths.ASSETS_EXTRA_DIR}/{paths.EXPORT_INFO_FILE}": b'{"version": 3}',
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root, digests.write_sums(root)


def run(tmp_path: Path, source: str, digest: str | None, extra_env: dict | None = None, version: int = VERSION):
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "MODEL_NAME": NAME,
        "MODEL_VERSION": str(version),
        "MODEL_LAYOUT": LAYOUT,
        "MODEL_SOURCE": source,
        "MODEL_DIGEST": digest or "",
        "MODEL_BASE_PATH": str(tmp_path / "models" / NAME),
        **(extra_env or {}),
    }
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def served(tmp_path: Path, version: int = VERSION) -> Path:
    return tmp_path / "models" / NAME / str(version)


def assert_refused(result, tmp_path: Path, message: str) -> None:
    assert result.returncode != 0
    assert "fetch-model: ERROR: " in result.stderr and message in result.stderr, result.stderr
    # Nothing TF Serving could load is left behind, and no staging either.
    assert not served(tmp_path).exists()
    assert not list(tmp_path.glob(f"models/{NAME}.partial-*"))


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def test_a_published_version_is_copied_and_verified(tmp_path, store):
    source, digest = publish(store)
    result = run(tmp_path, str(source), digest)
    assert result.returncode == 0, result.stderr
    assert f"verified {digest} (6 files)" in result.stderr
    dest = served(tmp_path)
    assert digests.verify(dest) == []
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == \
        sorted(digests.list_files(source) + [paths.DIGEST_FILE])
    assert [p.name for p in (tmp_path / "models").iterdir()] == [NAME]


def test_running_again_replaces_the_previous_copy(tmp_path, store):
    source, digest = publish(store)
    assert run(tmp_path, str(source), digest).returncode == 0
    (served(tmp_path) / "left-over").write_text("from an earlier, interrupted start")
    assert run(tmp_path, str(source), digest).returncode == 0
    assert not (served(tmp_path) / "left-over").exists()


def test_no_pinned_digest_fails_closed_before_fetching(tmp_path, store):
    source, _ = publish(store)
    result = run(tmp_path, str(source), None)
    assert_refused(result, tmp_path, "model.yaml pins no digest for channels_last")
    assert "make bump" in result.stderr
    assert "fetching" not in result.stderr


def test_a_digest_mismatch_is_refused(tmp_path, store):
    source, digest = publish(store)
    other = "sha256:" + ("0" if digest[-1] != "0" else "1") * 64
    result = run(tmp_path, str(source), other)
    assert_refused(result, tmp_path, f"digest mismatch for {source}: its SHA256SUMS is {digest} but model.yaml "
                                     f"pins {other}")


def test_a_tampered_file_is_refused(tmp_path, store):
    source, digest = publish(store)
    (source / paths.VARIABLES_DIR / "variables.index").write_bytes(b"other bytes")
    result = run(tmp_path, str(source), digest)
    assert_refused(result, tmp_path, "do not match its SHA256SUMS")
    assert "variables/variables.index" in result.stderr


def test_a_missing_listed_file_is_refused(tmp_path, store):
    source, digest = publish(store)
    (source / paths.ASSETS_DIR / paths.LABELS_FILE).unlink()
    assert_refused(run(tmp_path, str(source), digest), tmp_path, "do not match its SHA256SUMS")


def test_an_unlisted_file_is_refused(tmp_path, store):
    source, digest = publish(store)
    (source / paths.ASSETS_EXTRA_DIR / "extra.bin").write_bytes(b"not reviewed")
    assert_refused(run(tmp_path, str(source), digest), tmp_path,
                   "holds files SHA256SUMS does not list: assets.extra/extra.bin\n")


def test_a_missing_sha256sums_is_a_partial_or_unpublished_upload(tmp_path, store):
    source, digest = publish(store)
    (source / paths.DIGEST_FILE).unlink()
    assert_refused(run(tmp_path, str(source), digest), tmp_path, "a partial or unpublished upload")


def test_a_version_that_was_never_published_is_refused(tmp_path, store):
    source, digest = publish(store)
    missing = paths.version_dir(store, NAME, LAYOUT, VERSION + 1)
    result = run(tmp_path, str(missing), digest, version=VERSION + 1)
    assert result.returncode != 0 and "was never published" in result.stderr


def test_a_symlink_is_refused(tmp_path, store):
    source, digest = publish(store)
    (source / "link").symlink_to("/etc/passwd")
    assert_refused(run(tmp_path, str(source), digest), tmp_path, "not a regular file")


def test_sums_that_point_outside_the_version_are_refused(tmp_path, store):
    source, _ = publish(store)
    sums = source / paths.DIGEST_FILE
    sums.write_text(sums.read_text() + f"{'0' * 64}  ../../../etc/passwd\n")
    assert_refused(run(tmp_path, str(source), digests.version_digest(source)), tmp_path, "outside the version")


@pytest.mark.parametrize("digest", ["abc", "sha256:XYZ", "md5:" + "0" * 64, "sha256:" + "0" * 63])
def test_a_malformed_digest_is_refused(tmp_path, store, digest):
    source, _ = publish(store)
    assert_refused(run(tmp_path, str(source), digest), tmp_path, "MODEL_DIGEST must be sha256:<64 lowercase hex>")


def fake_rclone(tmp_path, *record_lines: str):
    """A stand-in rclone on a bin/ folder: writes its argv and then `record_lines` (shell words, expanded) to
    $RECORD, and copies $FAKE_BUCKETS/<bucket path> into the destination."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rclone = bin_dir / "rclone"
    rclone.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$RECORD"\n'
        + "".join(f'echo "{line}" >> "$RECORD"\n' for line in record_lines)
        + 'for last; do :; done\n'
        'src=$(echo "$@" | awk \'{print $(NF-1)}\')\n'
        'cp -R "$FAKE_BUCKETS/${src#:*:}/." "$last/"\n')
    rclone.chmod(rclone.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_remote_stores_go_through_rclone(tmp_path, store):
    """gs:// and s3:// are rclone on-the-fly remotes; a stand-in rclone records how it is called."""
    source, digest = publish(store)
    bin_dir = fake_rclone(tmp_path, "region=${RCLONE_S3_REGION:-}")
    buckets = tmp_path / "buckets"
    shutil.copytree(store, buckets / "team-models" / "tf")
    record = tmp_path / "rclone-argv"
    remote = f":s3:team-models/tf/{NAME}/{LAYOUT}/{VERSION}"

    result = run(tmp_path, remote, digest, {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record),
                                            "FAKE_BUCKETS": str(buckets), "AWS_REGION": "eu-west-1"})

    assert result.returncode == 0, result.stderr
    argv, region = record.read_text().splitlines()
    assert argv.startswith("copy ") and f" {remote} {tmp_path}/models/{NAME}.partial-{VERSION}" in argv
    assert region == "region=eu-west-1"  # taken from IRSA's AWS_REGION
    assert digests.verify(served(tmp_path)) == []


def test_a_failing_rclone_keeps_the_pod_from_starting(tmp_path, store):
    _, digest = publish(store)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rclone").write_text("#!/bin/sh\necho 'ERROR : directory not found' >&2\nexit 3\n")
    (bin_dir / "rclone").chmod(0o755)
    result = run(tmp_path, ":gcs:bucket/resnet/channels_last/3", digest, {"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert_refused(result, tmp_path, "could not copy :gcs:bucket/resnet/channels_last/3")
    assert "directory not found" in result.stderr


def test_an_azure_blob_store_goes_through_rclone_with_the_injected_identity(tmp_path, store):
    """az:// renders to rclone's azureblob backend with env_auth and the account in the connection string; the
    stand-in rclone sees the variables Azure Workload Identity's webhook injects, passed through untouched."""
    source, digest = publish(store)
    bin_dir = fake_rclone(tmp_path, "client=${AZURE_CLIENT_ID:-} tenant=${AZURE_TENANT_ID:-} "
                                    "token=${AZURE_FEDERATED_TOKEN_FILE:-}")
    buckets = tmp_path / "buckets"
    shutil.copytree(store, buckets / "models" / "tf")
    record = tmp_path / "rclone-argv"
    remote = f":azureblob,env_auth,account=teamstore:models/tf/{NAME}/{LAYOUT}/{VERSION}"
    injected = {"AZURE_CLIENT_ID": "6a1f3c2e-9b7d-4e11-8f0a-2c5d7e9b1a34",
                "AZURE_TENANT_ID": "0b8e2f4a-1c3d-4e5f-9a7b-6c8d0e2f4a1b",
                "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}

    result = run(tmp_path, remote, digest, {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record),
                                            "FAKE_BUCKETS": str(buckets), **injected})

    assert result.returncode == 0, result.stderr
    argv, env = record.read_text().splitlines()
    assert argv.startswith("copy ") and f" {remote} {tmp_path}/models/{NAME}.partial-{VERSION}" in argv
    assert env == ("client=6a1f3c2e-9b7d-4e11-8f0a-2c5d7e9b1a34 tenant=0b8e2f4a-1c3d-4e5f-9a7b-6c8d0e2f4a1b "
                   "token=/var/run/secrets/azure/tokens/azure-identity-token")
    assert digests.verify(served(tmp_path)) == []
    assert f"from {remote}" in result.stderr


def test_a_tampered_azure_blob_copy_is_refused(tmp_path, store):
    """The digest check holds for azureblob sources as for the others: rclone succeeding is not enough."""
    _, digest = publish(store)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rclone").write_text(
        "#!/bin/sh\nfor last; do :; done\n"
        'cp -R "$SRC/." "$last/"; printf x >> "$last/saved_model.pb"\n')
    (bin_dir / "rclone").chmod(0o755)
    remote = f":azureblob,env_auth,account=teamstore:models/tf/{NAME}/{LAYOUT}/{VERSION}"
    result = run(tmp_path, remote, digest, {"PATH": f"{bin_dir}:{os.environ['PATH']}",
                                            "SRC": str(paths.version_dir(store, NAME, LAYOUT, VERSION))})
    assert_refused(result, tmp_path, f"files of {remote} do not match its SHA256SUMS")
