"""issue 13: the export CLI's one-line errors for odd labels files, model files and option values."""
import subprocess
import sys

import pytest

from export import cli, labels
from export.source import _check_container
from tools import paths
from tools.config import MAX_IMAGE_PIXELS, MAX_REQUEST_BYTES, MAX_REQUEST_PIXELS
from tools.errors import UserError


def test_labels_bom_is_not_part_of_the_first_label(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffred\ngreen\n".encode("utf-8"))
    assert labels.read_labels(path) == ["red", "green"]


def test_duplicate_labels_name_both_lines(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("red\ngreen\nred\n")
    with pytest.raises(UserError, match=r"'red' on line 3 repeats line 1"):
        labels.read_labels(path)


def test_labels_directory_is_named_as_a_directory(tmp_path):
    with pytest.raises(UserError, match=r"labels file .* is a directory"):
        labels.read_labels(tmp_path)


@pytest.mark.parametrize("name,content,message", [
    ("model.keras", b"just some text\n", r"model.keras is not a zip archive as a .keras file must be"),
    ("model.h5", b"PK\x03\x04zipped", r"model.h5 is not an HDF5 file as a .h5 file must be"),
])
def test_model_file_of_the_wrong_kind_is_named(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        _check_container(path)


def test_model_file_container_check_accepts_real_signatures(tmp_path):
    (tmp_path / "ok.keras").write_bytes(b"PK\x03\x04rest")
    (tmp_path / "ok.h5").write_bytes(b"\x00" * 512 + b"\x89HDF\r\n\x1a\nrest")
    _check_container(tmp_path / "ok.keras")
    _check_container(tmp_path / "ok.h5")


@pytest.mark.parametrize("value", ["10000000000000000000", str(MAX_IMAGE_PIXELS + 1), "0", "1e30"])
def test_max_image_pixels_option_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parser().parse_args(["--max-image-pixels", value])
    assert exc.value.code == 2
    assert "--max-image-pixels" in capsys.readouterr().err


@pytest.mark.parametrize("option,maximum", [("--max-request-pixels", MAX_REQUEST_PIXELS),
                                            ("--max-request-bytes", MAX_REQUEST_BYTES)])
@pytest.mark.parametrize("value", ["10000000000000000000", "maximum+1", "0", "1e30"])
def test_request_bound_options_are_usage_errors(option, maximum, value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parser().parse_args([option, str(maximum + 1) if value == "maximum+1" else value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert getattr(cli.parser().parse_args([option, str(maximum)]), option[2:].replace("-", "_")) == maximum


def test_request_pixels_below_the_image_limit_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["--max-image-pixels", "50000000", "--max-request-pixels", "40000000", "--output-dir", str(out),
                     "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --max-request-pixels / model.max_request_pixels 40000000: must be at least the image limit "
                   "(50000000): one image at that limit must fit in a request, got 40000000"]
    assert not out.exists()


def test_cli_labels_directory_is_one_line_exit_2(tmp_path, tiny_model_files):
    # Through the real entry point: one line on stderr, exit 2, nothing written.
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "export", "--labels", str(tmp_path), "--output-dir", str(out),
                           "--quiet", "--model-file", str(tiny_model_files[0]), "--name", "tiny"],
                          cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "is a directory" in lines[0], proc.stderr
    assert not out.exists()
