"""SHA256SUMS of an exported version: written by the exporter, checked by validate, publish and the init step.

Format is `sha256sum -c`'s own ("<hex>  <relative path>", sorted), so the init container verifies a version
with busybox alone. The sha256 of SHA256SUMS itself is the version's digest, pinned in model.yaml.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tools import paths

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every regular file below root as a sorted relative POSIX path, SHA256SUMS excluded."""
    root = Path(root)
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != paths.DIGEST_FILE:
                found.append(rel)
    return sorted(found)


def render_sums(root: Path) -> str:
    return "".join(f"{sha256_file(Path(root) / rel)}  {rel}\n" for rel in list_files(root))


def write_sums(root: Path) -> str:
    """Write SHA256SUMS for root and return the version digest ("sha256:<hex>")."""
    text = render_sums(root)
    target = Path(root) / paths.DIGEST_FILE
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    return digest_of_text(text)


def digest_of_text(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def version_digest(root: Path) -> str:
    """The digest of an exported version: sha256 of its SHA256SUMS file."""
    return digest_of_text((Path(root) / paths.DIGEST_FILE).read_bytes())


def parse_sums(text: str) -> dict[str, str]:
    """relative path -> hex digest; raises ValueError on a malformed line or an unsafe path."""
    entries = {}
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"line {n} is not '<sha256>  <path>'")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"line {n} names a path outside the version: {rel!r}")
        entries[rel] = digest
    return entries


def verify(root: Path) -> list[str]:
    """Problems found comparing root with its SHA256SUMS (empty list: every file matches, nothing extra)."""
    root = Path(root)
    sums_path = root / paths.DIGEST_FILE
    if not sums_path.is_file():
        return [f"{paths.DIGEST_FILE} is missing (a partial or unfinished export)"]
    try:
        expected = parse_sums(sums_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{paths.DIGEST_FILE} is malformed: {exc}"]
    problems = []
    present = set(list_files(root))
    for rel, digest in expected.items():
        if rel not in present:
            problems.append(f"{rel} is listed in {paths.DIGEST_FILE} but missing")
        elif sha256_file(root / rel) != digest:
            problems.append(f"{rel} does not match its sha256 in {paths.DIGEST_FILE} (tampered or corrupt)")
    for rel in sorted(present - set(expected)):
        problems.append(f"{rel} is not listed in {paths.DIGEST_FILE}")
    return problems
