"""PodMonitor, PrometheusRule and ScaledObject against their vendored upstream CRDs (crds/*.yaml), strictly
(tools/vendored_crds.py says why).

    problems = validate(obj)        # ["<kind>/<name>: <path>: <message>", ...]; [] when valid
    kinds()                         # {(group, kind)} these schemas cover
"""
from __future__ import annotations

from pathlib import Path

from tools.vendored_crds import VendoredCRDs

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES = ("podmonitors.yaml", "prometheusrules.yaml", "scaledobjects.yaml")
_CRDS = VendoredCRDs(CRD_DIR, CRD_FILES)
kinds, covers, validate = _CRDS.kinds, _CRDS.covers, _CRDS.validate
