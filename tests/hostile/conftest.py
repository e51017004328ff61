"""The tiny export, loaded once for the corpus and the fuzz run."""
import pytest


@pytest.fixture(scope="session")
def tiny_served(tiny_export):
    """channels_last of the shared tiny export, loaded and called as TF Serving calls it."""
    from tools.validate.serving import LoadedExport

    return LoadedExport(tiny_export.dirs["channels_last"], "channels_last", tiny_export.name, 1)
