"""The golden set's images: deterministic reference images that cover the preprocessing, and user samples."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tools.errors import UserError
from tools.goldenset.images import reference_images, sample_images


def test_reference_images_are_deterministic_and_cover_formats_sizes_and_grayscale():
    first, second = reference_images((224, 224)), reference_images((224, 224))
    assert [i.data for i in first] == [i.data for i in second]
    assert len(first) >= 8 and len({i.name for i in first}) == len(first)
    assert {i.fmt for i in first} == {"jpeg", "png"}
    assert {"L"} <= {i.mode for i in first if i.fmt == "jpeg"} and "L" in {i.mode for i in first if i.fmt == "png"}
    assert len({round(i.width / i.height, 2) for i in first}) >= 4  # several aspect ratios
    assert min(i.width for i in first) < 224 < max(i.width for i in first)  # smaller and larger than the input
    assert max(i.width for i in first) >= 2 * 224  # reaches libjpeg's reduced-scale decode
    for image in first:  # what the file says it is
        decoded = Image.open(io.BytesIO(image.data))
        assert (decoded.format.lower(), decoded.size, decoded.mode) == (image.fmt, (image.width, image.height),
                                                                        image.mode)


def test_reference_images_follow_the_input_size():
    assert reference_images((40, 48))[0].width == 48 and reference_images((40, 48))[0].height == 40


def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 4), colour).save(path)


def test_samples_one_subfolder_per_class_sorted_with_labels(tmp_path):
    _png(tmp_path / "red" / "b.png", "red")
    _png(tmp_path / "red" / "a.png", "red")
    _png(tmp_path / "blue" / "x.png", "blue")
    (tmp_path / "red" / "notes.txt").write_text("not an image")
    (tmp_path / "loose.png").write_bytes(b"")  # only subfolders hold samples
    samples = sample_images(tmp_path)
    assert [(s.name, s.label, s.source) for s in samples] == [
        ("blue/x.png", "blue", "sample"), ("red/a.png", "red", "sample"), ("red/b.png", "red", "sample")]
    assert sample_images(None) == []


def test_bad_samples_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        sample_images(tmp_path / "missing")
    (tmp_path / "cat").mkdir()
    with pytest.raises(UserError, match="has no images in class subfolders"):
        sample_images(tmp_path)
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"cat/broken.jpg is not a readable image"):
        sample_images(tmp_path)
