"""Rollout and AnalysisTemplate against the vendored upstream Argo Rollouts CRDs (crds/*.yaml), strictly
(tools/vendored_crds.py says why).

    problems = validate(obj)        # ["<kind>/<name>: <path>: <message>", ...]; [] when valid
    covers(obj)                     # True for the kinds these CRDs define
"""
from __future__ import annotations

from pathlib import Path

from tools.vendored_crds import VendoredCRDs

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("rollout-crd.yaml", "analysis-template-crd.yaml")
_CRDS = VendoredCRDs(CRD_DIR, CRD_FILES)
kinds, covers, validate = _CRDS.kinds, _CRDS.covers, _CRDS.validate
