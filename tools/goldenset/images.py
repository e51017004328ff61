"""The golden set's images: deterministic reference images made here, plus the user's own labelled samples.

The reference images are drawn relative to the model's input size, so every path of the in-graph
preprocessing runs: an exact-size JPEG, smaller and larger ones of other aspect ratios, one large enough for
libjpeg's reduced-scale decode, grayscale JPEG and PNG, an RGB and an RGBA PNG. Smooth shapes and stripes,
no noise: they compress to a few KiB each, so the whole set fits in a ConfigMap (see overlay.py). The same
input size, Pillow and seed give the same bytes, so two validations record identical golden sets.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tools.errors import UserError

# Files of a samples folder that are images the servable decodes (export/preprocess.py: JPEG, PNG, GIF, BMP).
SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
REFERENCE = "reference"
SAMPLE = "sample"


@dataclass(frozen=True)
class GoldenImage:
    name: str  # unique in the set; a sample is "<class folder>/<file name>"
    data: bytes
    fmt: str  # jpeg, png, gif, bmp
    width: int
    height: int
    mode: str  # what the file holds: RGB, L (grayscale), RGBA, ...
    source: str  # REFERENCE or SAMPLE
    label: str | None = None  # a sample's class folder: the label a person gave it

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _drawing(height: int, width: int, seed: int) -> np.ndarray:
    """uint8 RGB [h, w, 3]: a colour ramp, a few flat ellipses and soft stripes; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    angle = rng.uniform(0, np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    pixels = np.stack([ramp, 1 - ramp, np.sqrt(x * y)], axis=-1) * rng.uniform(60, 200, 3)
    for _ in range(3):
        cy, cx = rng.uniform(0.15, 0.85, 2)
        ry, rx = rng.uniform(0.1, 0.35, 2)
        pixels[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] = rng.uniform(0, 255, 3)
    stripes = 24 * np.sin(2 * np.pi * (x * rng.integers(2, 7) + y * rng.integers(2, 7)))
    return np.clip(np.rint(pixels + stripes[..., None]), 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, fmt: str, mode: str) -> bytes:
    image = Image.fromarray(pixels).convert(mode)
    if mode == "RGBA":  # a real alpha channel: transparent towards the left edge
        alpha = np.linspace(64, 255, image.width, dtype=np.float64)[None, :].repeat(image.height, 0)
        image.putalpha(Image.fromarray(np.rint(alpha).astype(np.uint8)))
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=85, optimize=True)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def reference_specs(input_size: tuple[int, int]) -> list[tuple[str, int, int, str, str]]:
    """(name, height, width, format, mode) of the reference images for a model input of `input_size`."""
    h, w = (int(v) for v in input_size)

    def scaled(fy: float, fx: float) -> tuple[int, int]:
        return max(round(h * fy), 8), max(round(w * fx), 8)

    return [
        ("jpeg-exact", h, w, "jpeg", "RGB"),
        ("jpeg-wide-larger", *scaled(1.25, 2.0), "jpeg", "RGB"),
        ("jpeg-tall-smaller", *scaled(0.75, 0.5), "jpeg", "RGB"),
        # At least twice the input each way: libjpeg decodes it at 1/2 scale (jpeg_fast_downscale).
        ("jpeg-large-2.5x", *scaled(2.5, 2.5), "jpeg", "RGB"),
        ("jpeg-grayscale", *scaled(1.0, 1.5), "jpeg", "L"),
        ("png-rgb-square", *scaled(1.0, h / w if w else 1.0), "png", "RGB"),
        ("png-grayscale-small", *scaled(0.4, 0.6), "png", "L"),
        ("png-rgba-wide", *scaled(0.5, 1.2), "png", "RGBA"),
    ]


def reference_images(input_size: tuple[int, int]) -> list[GoldenImage]:
    """The deterministic reference images for a model input of `input_size` (height, width)."""
    images = []
    for seed, (name, height, width, fmt, mode) in enumerate(reference_specs(input_size), start=101):
        data = _encode(_drawing(height, width, seed), fmt, mode)
        images.append(GoldenImage(name, data, fmt, width, height, mode, REFERENCE))
    return images


def sample_images(samples_dir: Path | None) -> list[GoldenImage]:
    """The user's labelled images: every image file in each subfolder of samples_dir (the folder's name is the
    label), sorted by folder and file name. None: no samples. A missing folder or a file that is not an image
    is a UserError naming it."""
    if samples_dir is None:
        return []
    root = Path(samples_dir)
    if not root.is_dir():
        raise UserError(f"model.samples_dir: {root} is not a folder")
    images = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            if path.suffix.lower() not in SAMPLE_SUFFIXES:
                continue
            data = path.read_bytes()
            try:
                with Image.open(io.BytesIO(data)) as image:
                    fmt, (width, height), mode = (image.format or "").lower(), image.size, image.mode
            except Exception as exc:  # Pillow raises several types for an unreadable file
                raise UserError(f"model.samples_dir: {path} is not a readable image: {exc}") from None
            images.append(GoldenImage(f"{folder.name}/{path.name}", data, fmt, width, height, mode, SAMPLE,
                                      label=folder.name))
    if not images:
        raise UserError(f"model.samples_dir: {root} has no images in class subfolders "
                        f"({', '.join(SAMPLE_SUFFIXES)})")
    return images
