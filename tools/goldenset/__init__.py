"""The golden set: reference images (and the user's samples) with the answers validation recorded for them.

- images.py   the deterministic reference images and the user's labelled samples (model.samples_dir)
- record.py   `record_layout`: validation answers the set per layout into the report's "golden_set"
- overlay.py  `overlay_files`: render writes each overlay's golden-set/ (its ConfigMap), size-checked
- replay.py   `make smoke` / `python -m tools smoke`: the smoke-test script against any endpoint
- measure.py  the CPU measurements behind the default tolerances

The replay itself is k8s/components/smoke-test/smoke_test.py (standard library only), the one script the
PostSync Job and `make smoke` run. Not named golden.py: tools/check/golden.py means golden files of the
built overlays.
"""
