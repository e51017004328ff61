"""issue 13: loader errors that used to lose their cause (duplicate keys, misspelled keys, unbounded pixels)."""
import pytest

from tests.config.test_config import mutate
from tests.conftest import base_config_data
from tools import paths
from tools.config import (DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_PIXELS, MAX_IMAGE_PIXELS, MAX_REQUEST_BYTES,
                          MAX_REQUEST_PIXELS, ConfigError, load_config, parse_config)
from tools.errors import UserError


def test_duplicate_key_names_its_path_and_lines(tmp_path):
    text = (paths.REPO_ROOT / paths.MODEL_YAML).read_text()
    text = text.replace("  top_k: 5 ", "  top_k: 5\n  top_k: 6 #", 1)
    path = tmp_path / "model.yaml"
    path.write_text(text)
    line = text.splitlines().index("  top_k: 5") + 1
    with pytest.raises(UserError, match=rf"model.yaml: not valid YAML: model.top_k: duplicate key \(lines {line} and {line + 1}\)"):
        load_config(path)


def test_duplicate_key_inside_a_list_item(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("a:\n  - b: 1\n    b: 2\n")
    with pytest.raises(UserError, match=r"a\[0\].b: duplicate key \(lines 2 and 3\)"):
        load_config(path)


def test_misspelled_required_key_is_named():
    data = base_config_data()
    resources = data["targets"]["cpu"]["resources"]
    resources["memroy"] = resources.pop("memory")
    with pytest.raises(ConfigError, match=r"targets.cpu.resources.memory: is required; found unknown key 'memroy'"):
        parse_config(data)


@pytest.mark.parametrize("value,message", [
    (10_000_000_000_000_000_000, f"must be at most {MAX_IMAGE_PIXELS}"),
    (1e30, r"must be an integer, got the number 1e\+30"),
    (MAX_IMAGE_PIXELS + 1, f"must be at most {MAX_IMAGE_PIXELS}"),
    (0, "must be at least 1"),
])
def test_max_image_pixels_is_bounded(value, message):
    with pytest.raises(ConfigError, match=rf"model.max_image_pixels: {message}"):
        parse_config(mutate("model.max_image_pixels", value))
    data = mutate("model.max_image_pixels", MAX_IMAGE_PIXELS)
    data["model"]["max_request_pixels"] = MAX_IMAGE_PIXELS  # one image at the limit must fit in a request
    assert parse_config(data).model.max_image_pixels == MAX_IMAGE_PIXELS


@pytest.mark.parametrize("key,maximum", [("max_request_pixels", MAX_REQUEST_PIXELS),
                                         ("max_request_bytes", MAX_REQUEST_BYTES)])
@pytest.mark.parametrize("value,message", [
    (10_000_000_000_000_000_000, "must be at most {maximum}"),
    (1e30, r"must be an integer, got the number 1e\+30"),
    ("maximum+1", "must be at most {maximum}"),
    (0, "must be at least 1"),
    (True, "must be an integer"),
])
def test_request_bounds_are_bounded(key, maximum, value, message):
    value = maximum + 1 if value == "maximum+1" else value
    with pytest.raises(ConfigError, match=rf"model.{key}: {message.format(maximum=maximum)}"):
        parse_config(mutate(f"model.{key}", value))
    assert getattr(parse_config(mutate(f"model.{key}", maximum)).model, key) == maximum


def test_request_bounds_default_and_cover_one_image():
    data = base_config_data()
    for key in ("max_request_pixels", "max_request_bytes"):
        data["model"].pop(key, None)
    model = parse_config(data).model
    assert (model.max_request_pixels, model.max_request_bytes) == (DEFAULT_MAX_REQUEST_PIXELS, DEFAULT_MAX_REQUEST_BYTES)
    # model.yaml states the defaults too, so the comment's arithmetic and the code cannot drift apart.
    assert parse_config(base_config_data()).model.max_request_pixels == DEFAULT_MAX_REQUEST_PIXELS
    assert parse_config(base_config_data()).model.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    data = mutate("model.max_request_pixels", 39_999_999)
    with pytest.raises(ConfigError, match=r"model.max_request_pixels: must be at least model.max_image_pixels "
                                          r"\(40000000\): one image at that limit must fit in a request, got 39999999"):
        parse_config(data)


@pytest.mark.parametrize("switch, message", [("exif_orientation", "must be true or false"),
                                             ("fold_batch_norms", "must be true, false or complete")])
def test_model_switches_default_on_and_are_checked(switch, message):
    data = base_config_data()
    data["model"].pop(switch, None)
    assert getattr(parse_config(data).model, switch) is True
    assert getattr(parse_config(mutate(f"model.{switch}", False)).model, switch) is False
    with pytest.raises(ConfigError, match=f"model.{switch}: {message}"):
        parse_config(mutate(f"model.{switch}", "no"))


def test_fold_batch_norms_also_takes_complete_and_nothing_else():
    assert parse_config(mutate("model.fold_batch_norms", "complete")).model.fold_batch_norms == "complete"
    with pytest.raises(ConfigError,
                       match="model.fold_batch_norms: must be true, false or complete, got the string 'all'"):
        parse_config(mutate("model.fold_batch_norms", "all"))
