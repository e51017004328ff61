"""Shared test configuration: options, and the one small exported model every test area reuses."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests import `export` and `tools` from the repository root; they are never installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files (built overlays) instead of comparing against them",
    )
