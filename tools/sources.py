"""The source file of an export (a user's Keras model file, or a weights file for the architecture), by content.

Three places hold it, all named by its sha256 (paths.source_file_name: `sha256-<hex><suffix>`):
- where model.yaml points (`model.source.model_file` / `model.source.weights`), on the machine that trained it;
- the local cache `build/sources/` (paths.source_cache_file): `make export` puts every source it used there,
  so validation can rebuild its reference from the sha256 an export records, whatever happened to the file;
- the model store (paths.store_source_uri), uploaded once by `make publish`, so CI and every teammate can
  re-export a pinned version (`make verify-digests`) from the exact bytes that were reviewed.

Every copy is checked against the sha256 while it streams (nothing is read into memory whole), and lands
under its final name only once complete and verified (temporary name, then an atomic rename), so an
interrupted download or upload is simply done again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools import paths
from tools.config import Config, ModelSettings
from tools.digests import sha256_file
from tools.errors import UserError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceRef:
    """One source file by content: what model.yaml pins (model.source.sha256) and export_info records."""

    kind: str  # "model_file" | "weights"
    sha256: str
    suffix: str  # ".keras", ".h5"

    @property
    def key(self) -> str:
        return f"model.source.{self.kind}"


def configured(settings: ModelSettings) -> tuple[str, Path] | None:
    """(kind, path) of the source file model.yaml names, None for seeded weights."""
    src = settings.source
    if src.model_file is not None:
        return "model_file", src.model_file
    if src.weights is not None:
        return "weights", src.weights
    return None


def from_export_info(info: dict | None) -> SourceRef | None:
    """The source an export was made from, from its export_info.json `source`; None for seeded weights."""
    source = (info or {}).get("source") or {}
    if source.get("kind") == "model_file" and source.get("file_sha256"):
        return SourceRef("model_file", source["file_sha256"], Path(str(source.get("file", ""))).suffix)
    if source.get("weights_file_sha256"):
        return SourceRef("weights", source["weights_file_sha256"], Path(str(source.get("weights_file", ""))).suffix)
    return None


# issue 13: the bucket model.yaml ships with. Publishing to it retried for ~50 s with pages of library
# tracebacks; every store access (publish, export's fetch, verify-digests, bump) refuses it before any network call.
PLACEHOLDER_BUCKETS = ("your-team-models",)


def store_uri(config: Config) -> str:
    """Where this machine reads and writes the store, as fsspec spells it; pvc:// is a volume inside the cluster,
    not reachable here."""
    uri = config.store.upload_uri
    if uri.startswith("pvc://"):
        raise UserError(
            f"store.uri is {uri}, a PersistentVolumeClaim that only pods can reach: set store.publish_uri in "
            "model.yaml to where this machine writes that volume's files (e.g. file:///mnt/nfs/models)"
        )
    scheme, _, rest = uri.partition("://")
    if scheme in ("gs", "s3", "az") and rest.split("/", 1)[0] in PLACEHOLDER_BUCKETS:
        raise UserError(f"store.uri is {uri}, the placeholder model.yaml ships with: set store.uri (or "
                        "store.publish_uri) in model.yaml to your team's bucket")
    if scheme == "az":
        return azure_fsspec_uri(uri, config.store.azure_account)
    return uri


def azure_fsspec_uri(uri: str, account: str | None) -> str:
    """az://<container>/<path> with its storage account, in the form adlfs reads the account from
    (`az://<container>@<account>.blob.core.windows.net/<path>`: AzureBlobFileSystem._get_kwargs_from_urls,
    fsspec/adlfs adlfs/spec.py), so every fsspec call site opens the right account with no extra arguments."""
    if not account:
        raise UserError(f"store URI {uri} is an az:// URI but model.yaml sets no store.azure_account")
    container, _, path = uri[len("az://"):].partition("/")
    return f"az://{container}@{account}.blob.core.windows.net/{path}".rstrip("/")


def repo_root(config: Config) -> Path:
    return Path(config.path).resolve().parent


def _hash_stream(read: Callable[[int], bytes], write: Callable[[bytes], object] | None = None) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: read(_CHUNK), b""):
        h.update(block)
        if write is not None:
            write(block)
    return h.hexdigest()


def cache_put(root: Path, path: Path, sha256: str) -> Path:
    """Keep `path` (whose sha256 the caller computed) in the local cache: hardlink, else copy; atomically."""
    target = paths.source_cache_file(root, sha256, path.suffix)
    if target.is_file() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{paths.TMP_PREFIX}{target.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve(config: Config, version: int, root: Path | None = None,
            log: Callable[[str], None] = lambda line: None) -> Path | None:
    """The file an export of `version` reads its source from; None for seeded weights.

    The local file when it exists, else the cached or stored copy of the sha256 model.yaml pins. When `version`
    is model.version and model.source.sha256 is pinned, the bytes must be exactly those (either way)."""
    found = configured(config.model)
    if found is None:
        return None
    kind, path = found
    root = Path(root) if root else repo_root(config)
    pinned = config.model.source.sha256 if version == config.model.version else None
    if path.is_file():
        got = sha256_file(path)
        if pinned and got != pinned:
            raise UserError(
                f"model.source.{kind} {path.name} has sha256 {got}, but model.source.sha256 pins {pinned} (the "
                f"source of v{version}): restore that file, or export a new version (--version N) from this one"
            )
        cache_put(root, path, got)
        return path
    if not pinned:
        why = (f"model.source.sha256 pins the source of v{config.model.version}, not v{version}"
               if config.model.source.sha256 else "model.source.sha256 pins nothing to fetch from the model store")
        raise UserError(f"model.source.{kind}: {path} does not exist ({why})")
    ref = SourceRef(kind, pinned, path.suffix)
    cached = paths.source_cache_file(root, pinned, path.suffix)
    if cached.is_file() and sha256_file(cached) == pinned:
        log(f"{path.name} is absent here: using the cached copy {cached}")
        return cached
    log(f"{path.name} is absent here: fetching sha256 {pinned[:12]} from the model store")
    return fetch(config, ref, root)


def fetch(config: Config, ref: SourceRef, root: Path | None = None) -> Path:
    """Download the stored source into the local cache, checking its sha256 as it streams; returns the file."""
    import fsspec

    root = Path(root) if root else repo_root(config)
    uri = paths.store_source_uri(store_uri(config), config.model.name, ref.sha256, ref.suffix)
    target = paths.source_cache_file(root, ref.sha256, ref.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=paths.TMP_PREFIX, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        fs, remote = fsspec.core.url_to_fs(uri)
        if not fs.exists(remote):
            raise UserError(f"{ref.key}: {uri} is not in the model store (was v{config.model.version} published "
                            "with `make publish`?)")
        with os.fdopen(fd, "wb") as out, fs.open(remote, "rb") as f:
            got = _hash_stream(f.read, out.write)
        if got != ref.sha256:
            raise UserError(f"{uri} is corrupt: its sha256 is {got}, but model.source.sha256 pins {ref.sha256}")
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"could not fetch {uri}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") \
            from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def stored_sha256(fs, remote: str) -> str:
    """The sha256 of a file in the store, streamed."""
    with fs.open(remote, "rb") as f:
        return _hash_stream(f.read)


def upload(config: Config, ref: SourceRef, root: Path | None = None,
           log: Callable[[str], None] = lambda line: None) -> str:
    """Put the source `ref` in the store once: "uploaded" or "already in the store" (verified). The local copy
    is the cached one (`make export` put it there); a stored copy with other bytes is reported as corrupt."""
    import fsspec

    root = Path(root) if root else repo_root(config)
    uri = paths.store_source_uri(store_uri(config), config.model.name, ref.sha256, ref.suffix)
    fs, remote = fsspec.core.url_to_fs(uri)
    try:
        if fs.exists(remote):
            got = stored_sha256(fs, remote)
            if got != ref.sha256:
                raise UserError(f"the model store's copy of the source is corrupt: {uri} has sha256 {got}; "
                                "delete it there and publish again")
            log(f"source: already in the store at {uri}")
            return "already in the store"
        local = paths.source_cache_file(root, ref.sha256, ref.suffix)
        if not local.is_file() or sha256_file(local) != ref.sha256:
            raise UserError(f"the source of this export (sha256 {ref.sha256}) is not in {paths.SOURCES_DIR}/: "
                            "run `make export` again on this machine (it keeps every source it reads there)")
        fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        staging = remote.rsplit("/", 1)[0] + "/" + paths.TMP_PREFIX + remote.rsplit("/", 1)[1]
        fs.put_file(str(local), staging)
        fs.mv(staging, remote)  # readers see the complete file or nothing
    except OSError as exc:
        raise UserError(f"upload of the source to {uri} stopped: {exc}; run publish again") from None
    log(f"source: uploaded {local.stat().st_size / 1e6:.1f} MB to {uri}")
    return "uploaded"
