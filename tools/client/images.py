"""The images a client sends: files, directories of files, or generated photo-like JPEGs.

Images travel as their encoded bytes (the servable decodes and resizes them in the graph), so nothing here
decodes pixels; a file is only checked to start like a format the servable accepts, so a wrong file is
reported by name before anything is sent.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.errors import UserError

# The formats the servable decodes (export/preprocess.py), by file name in directories.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
FORMATS = "JPEG, PNG, GIF or BMP"


@dataclass(frozen=True)
class ImageInput:
    name: str  # what the table shows: the path as given, or sample-<n>.jpg
    data: bytes


def image_format(data: bytes) -> str | None:
    """"jpeg", "png", "gif" or "bmp" from the magic bytes, None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    return None


def read_image(path: Path, name: str | None = None) -> ImageInput:
    name = name or str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise UserError(f"cannot read image file {name}: it is a directory") from None
    except OSError as exc:
        raise UserError(f"cannot read image file {name}: {exc.strerror or exc}") from None
    if not data:
        raise UserError(f"image file {name} is empty")
    if image_format(data) is None:
        raise UserError(f"image file {name} is not a {FORMATS} image")
    return ImageInput(name, data)


def collect(sources: list[str | Path]) -> list[ImageInput]:
    """Read every file given, and every image file (by suffix, recursively, sorted) in every directory given."""
    images: list[ImageInput] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"directory {source} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            images += [read_image(p) for p in found]
        elif path.exists():
            images.append(read_image(path, str(source)))
        else:
            raise UserError(f"image file {source} does not exist")
    return images


def sample_jpeg(height: int, width: int, seed: int = 0, quality: int = 90) -> bytes:
    """A deterministic photo-like JPEG: smooth shading, a few soft-edged shapes, and sensor-like noise.

    Pure noise would compress to a file many times larger than a photo of the same size, and a flat
    gradient to one much smaller; this lands near a real photo's size, so decode timings are realistic.
    """
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 226, (4, 5, 3), dtype=np.uint8)
    image = Image.fromarray(coarse, "RGB").resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1 + 1, y1 + 1], fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(width, height) / 300)))
    # Luma-only noise: chroma is subsampled in JPEG, as in a camera's output.
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.normal(0.0, 4.0, (height, width, 1)).astype(np.int16)
    pixels = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def samples(count: int, seed: int = 0) -> list[ImageInput]:
    """`count` generated JPEGs of a few web-photo sizes around a ResNet's input size."""
    if count < 1:
        raise UserError(f"--samples must be at least 1, got {count}")
    sizes = [(240, 320), (300, 300), (256, 384), (360, 480)]
    return [
        ImageInput(f"sample-{i + 1}.jpg", sample_jpeg(*sizes[i % len(sizes)], seed=seed + i))
        for i in range(count)
    ]
