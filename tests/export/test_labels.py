import pytest

from export.labels import BACKGROUND, imagenet_labels, read_labels, resolve_labels
from tools.errors import UserError


def test_imagenet_names_ship_with_the_repository():
    names = imagenet_labels(1000)
    assert len(names) == 1000 == len(set(names))
    assert names[0] == "tench" and names[-1] == "toilet tissue"


def test_a_1001_class_model_gets_an_explicit_background_class_first():
    names = imagenet_labels(1001)
    assert names[0] == BACKGROUND and names[1] == "tench" and len(names) == 1001


def test_other_class_counts_need_a_labels_file():
    with pytest.raises(UserError, match="has 10 classes; ImageNet names fit 1000 or 1001"):
        resolve_labels(None, 10)


def test_labels_file_count_must_match_the_model(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("a\nb\nc\n")
    assert resolve_labels(f, 3) == ["a", "b", "c"]
    with pytest.raises(UserError, match="has 3 labels but the model has 4 classes"):
        resolve_labels(f, 4)


def test_blank_lines_inside_a_labels_file_are_an_error_but_trailing_ones_are_not(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("a\n\nc\n")
    with pytest.raises(UserError, match="line 2 is empty"):
        read_labels(f)
    f.write_text("a\nb\n\n\n")
    assert read_labels(f) == ["a", "b"]


def test_missing_labels_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_labels(tmp_path / "nope.txt")
