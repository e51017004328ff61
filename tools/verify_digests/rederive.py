"""The re-derivation itself: one export of model.version into a temporary directory, digests compared."""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools import digests, paths, publish, sources
from tools.config import Config
from tools.errors import UserError


@dataclass(frozen=True)
class Outcome:
    version: int
    digests: dict[str, str]  # layout -> the re-derived digest, equal to the pinned one
    source_sha256: str | None
    tensorflow_version: str


def verify_digests(config: Config, *, allow_unpinned: bool = False, verbose: bool = False,
                   log: Callable[[str], None] | None = None) -> Outcome | None:
    """Re-export and compare; UserError naming the layout and both digests on any difference. None when nothing
    is pinned and `allow_unpinned` (a fresh repository before its first pin)."""
    log = log or (lambda line: print(line, file=sys.stderr))
    settings = config.model
    layouts = publish.layouts(config)
    if not settings.digests:
        if allow_unpinned:
            log(f"model.digests pins nothing yet: nothing to re-derive (pin v{settings.version} with "
                f"`make bump VERSION={settings.version}`)")
            return None
        raise UserError(f"model.digests pins nothing: nothing to re-derive; pin v{settings.version} first with "
                        f"`make publish VERSION={settings.version}` and `make bump VERSION={settings.version}`")
    unpinned = [layout for layout in layouts if layout not in settings.digests]
    if unpinned:
        raise UserError(f"model.digests pins no digest for {', '.join(unpinned)}, which a target serves: "
                        f"bump the version again (`make bump`)")
    found = sources.configured(settings)
    if found is not None and settings.source.sha256 is None:
        raise UserError(f"model.source.{found[0]} is set but model.source.sha256 pins nothing, so nothing ties "
                        "the pinned digests to a source file: `make bump` pins it with the digests")
    from export.api import export_model  # TensorFlow loads only when there is something to do
    import tensorflow as tf

    # The source first, on its own, so the log says where its bytes came from (the export then reads the cache).
    sources.resolve(config, settings.version, log=log)
    with tempfile.TemporaryDirectory(prefix="verify-digests-") as scratch:
        # Exactly what `make export` runs (every layout, in its order), though only the served ones are compared:
        # a re-derivation repeats how the pin was made. Before export/canonical.py, a layout's bytes depended on what
        # the process had exported before it, and a fork serving GPU only could not re-derive its pin.
        dirs = export_model(config, version=settings.version, output_dir=Path(scratch), layouts=paths.LAYOUTS,
                            verbose=verbose)
        got = {layout: digests.version_digest(dirs[layout]) for layout in layouts}
    wrong = [f"{layout}: re-exported {got[layout]}, model.yaml pins {settings.digests[layout]} "
             f"(model.digests.{layout})" for layout in layouts if got[layout] != settings.digests[layout]]
    if wrong:
        raise UserError(f"the pinned digests are not what {settings.name} v{settings.version} exports to with "
                        f"TensorFlow {tf.__version__}: {'; '.join(wrong)}")
    what = f"source sha256 {settings.source.sha256}" if found else f"seeded weights (seed {settings.source.seed})"
    for layout in layouts:
        log(f"{layout}: {got[layout]} re-derived from {what}: equals model.digests.{layout}")
    return Outcome(settings.version, got, settings.source.sha256, tf.__version__)
