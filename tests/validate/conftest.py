"""Fixtures of the validator's tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def models(tiny_export, tmp_path) -> Path:
    """A private copy of the tiny export's <name>/ tree, free to break."""
    root = tmp_path / "models"
    shutil.copytree(Path(tiny_export.root) / tiny_export.name, root / tiny_export.name, symlinks=True)
    return root
