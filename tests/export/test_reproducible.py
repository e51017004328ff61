"""The same model and settings give the same bytes, and so the same digest, whatever the exporting process did
before: a pinned digest can be reproduced from the source, not only trusted. TensorFlow numbers traced functions
with a process-wide counter; export/canonical.py renames them by their order inside the export."""
import subprocess
import sys

import pytest
import yaml

from tests.conftest import tiny_config_data
from tools import digests, paths


@pytest.mark.slow(seconds=50)
def test_an_export_has_the_same_digest_in_any_process_and_alone_or_beside_the_other_layout(tmp_path, tiny_export):
    """The session's tiny export, made inside this test process after whatever other tests traced, against the CLI
    in fresh processes: both layouts, then channels_first alone (which before canonical names got other bytes)."""
    config_file = tmp_path / "model.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_data(tiny_export.model_file, tiny_export.labels_file)))
    mine = {lay: digests.version_digest(tiny_export.dirs[lay]) for lay in paths.LAYOUTS}
    for run, layouts in (("both", paths.LAYOUTS), ("alone", ("channels_first",))):
        out = tmp_path / run
        done = subprocess.run([sys.executable, "-m", "export", "--config", str(config_file), "--output-dir", str(out),
                               "--quiet", *[a for lay in layouts for a in ("--layout", lay)]],
                              cwd=paths.REPO_ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        found = {lay: digests.version_digest(paths.version_dir(out, tiny_export.name, lay, 1)) for lay in layouts}
        assert found == {lay: mine[lay] for lay in layouts}, run
