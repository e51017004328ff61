"""The same model and settings exported twice, in two processes, give the same bytes and so the same digest:
a pinned digest can be reproduced from the source, not only trusted."""
import subprocess
import sys

import pytest

from tools import digests, paths


@pytest.mark.slow
def test_two_exports_of_the_same_model_have_the_same_digest(tmp_path, tiny_model_files):
    model_file, labels_file = tiny_model_files
    found = []
    for run in ("a", "b"):
        out = tmp_path / run
        done = subprocess.run(
            [sys.executable, "-m", "export", "--model-file", str(model_file), "--labels", str(labels_file),
             "--name", "tiny", "--output-dir", str(out), "--quiet"],
            cwd=paths.REPO_ROOT, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        found.append({lay: digests.version_digest(paths.version_dir(out, "tiny", lay, 1)) for lay in paths.LAYOUTS})
    assert found[0] == found[1]
