"""Every bad input to the exporter: a specific one-line error, a non-zero exit, and nothing written."""
import shutil
from dataclasses import replace

import pytest

import export.api
from export.api import export_model
from export.cli import main
from tests.conftest import tiny_config_data
from tools.config import parse_config
from tools.errors import UserError


def files(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def config(tiny_model_files):
    return parse_config(tiny_config_data(*tiny_model_files))


def test_an_existing_version_is_never_overwritten(tiny_export, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(tiny_export.root, out)
    before = files(out)
    changed = replace(tiny_export.config, model=replace(tiny_export.config.model, top_k=2))
    with pytest.raises(UserError, match="version 1 of tiny already exists .* differs \\(.*top_k.* never overwritten"):
        export_model(changed, version=1, output_dir=out, verbose=False)
    assert files(out) == before


def test_exporting_the_same_model_again_is_a_no_op(tiny_export, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(tiny_export.root, out)
    before = files(out)
    assert export_model(tiny_export.config, version=1, output_dir=out, verbose=False) == {
        lay: out / "tiny" / lay / "1" for lay in tiny_export.dirs}
    assert files(out) == before


def test_an_existing_version_that_was_tampered_with_is_not_taken_as_the_same(tiny_export, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(tiny_export.root, out)
    (out / "tiny" / "channels_first" / "1" / "assets" / "labels.txt").write_text("x\ny\nz\nw\n")
    with pytest.raises(UserError, match="differs \\(assets/labels.txt does not match its sha256"):
        export_model(tiny_export.config, version=1, output_dir=out, verbose=False)


def test_unwritable_output_directory(config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError, match="is not writable"):
        export_model(config, output_dir=blocker / "models", verbose=False)
    assert tree(tmp_path) == ["a-file"]


def test_a_file_that_is_not_a_keras_model(tmp_path, tiny_model_files, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    out = tmp_path / "out"
    code = main(["--model-file", str(bad), "--name", "tiny", "--labels", str(tiny_model_files[1]),
                 "--output-dir", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: model file broken.keras is not a loadable Keras model")
    assert not out.exists()


def test_a_missing_model_file(tmp_path, capsys):
    code = main(["--model-file", str(tmp_path / "nope.keras"), "--name", "tiny", "--output-dir", str(tmp_path / "out"),
                 "--quiet"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_labels_that_do_not_match_the_model(tmp_path, tiny_model_files, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("only\ntwo\n")
    out = tmp_path / "out"
    code = main(["--model-file", str(tiny_model_files[0]), "--name", "tiny", "--labels", str(labels),
                 "--output-dir", str(out), "--quiet"])
    assert code == 2
    assert "labels file labels.txt has 2 labels but the model has 4 classes" in capsys.readouterr().err
    assert not out.exists()


def test_a_failure_in_the_second_layout_leaves_nothing_behind(config, tmp_path, monkeypatch):
    real = export.api.write_warmup
    calls = []

    def failing(path, requests):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, requests)

    monkeypatch.setattr(export.api, "write_warmup", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        export_model(config, output_dir=out, verbose=False)
    assert len(calls) == 2 and tree(tmp_path) == []


def test_a_bad_version_on_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version", "two", "--output-dir", str(tmp_path)])
    assert exc.value.code == 2 and "'two' is not an integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--version", "0", "--output-dir", str(tmp_path)])
    assert "must be a positive integer" in capsys.readouterr().err


def test_model_file_cannot_be_combined_with_an_architecture(tmp_path, tiny_model_files, capsys):
    code = main(["--model-file", str(tiny_model_files[0]), "--architecture", "ResNet101", "--output-dir", str(tmp_path)])
    assert code == 2 and "do not combine it with --architecture" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ["--model-file", "--labels", "--version", "--output-dir", "--architecture", "--weights",
                   "--preprocessing", "--top-k", "--max-image-pixels", "--layout"]:
        assert option in text
