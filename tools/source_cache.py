"""The local content-addressed cache of source model and weights files: build/sources/sha256-<hex><suffix>.

`make export` keeps every source file it used here, so validation can rebuild the parity reference from the
export's own record (by sha256) after model.yaml or the original file moved on."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tools import paths


def keep(file: Path, sha256: str, models_dir: Path) -> Path:
    """Put `file` (whose sha256 the caller computed) into the cache beside `models_dir`; a no-op when there.
    A hard link where the file system allows, else a copy; written under a temporary name and renamed."""
    target = paths.source_cache_file(models_dir, sha256, Path(file).suffix)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=paths.TMP_PREFIX, dir=target.parent)
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(file, tmp)
        except OSError:
            shutil.copyfile(file, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
