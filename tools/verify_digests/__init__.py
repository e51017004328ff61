"""Re-derive the pinned digests: export model.version again from the pinned source and require that both
layouts' digests equal the ones model.yaml pins.

    make verify-digests [ARGS="--allow-unpinned"]
    python -m tools verify-digests [--config model.yaml] [--allow-unpinned]

Exports are byte-reproducible (same source, settings and TensorFlow give the same SHA256SUMS), so the digests
a cluster verifies can be re-derived by anyone from the exact source file model.yaml names: the model file or
weights file is read where model.yaml points when it is there, else fetched from the model store by
`model.source.sha256`; either way its sha256 must be the pinned one. The pull-request workflow runs this
whenever model.yaml's `model:` section changes. The re-export goes to a temporary directory; build/models is
never touched.
"""
from tools.verify_digests.rederive import Outcome, verify_digests

__all__ = ["Outcome", "verify_digests"]
