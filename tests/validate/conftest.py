"""Fixtures of the validator's tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.validate.helpers import copy_models


@pytest.fixture
def models(tiny_export, tmp_path) -> Path:
    """A private copy of the tiny export's <name>/ tree, free to break."""
    return copy_models(tiny_export, tmp_path / "models")
