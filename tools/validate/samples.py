"""Images the validator makes itself, so validation needs no data set: photo-like samples in several sizes
and formats, and the malformed inputs a public endpoint will eventually receive. Deterministic for a seed."""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    height: int
    width: int
    fmt: str  # jpeg or png


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """uint8 RGB [h, w, 3]: a smooth background, a few bright shapes and sensor-like noise, so a network
    sees edges and textures at every scale rather than a flat field."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    angle = rng.uniform(0, np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    base = np.stack([ramp, 1 - ramp, (x * y) ** 0.5], axis=-1) * rng.uniform(60, 200, 3)
    for _ in range(4):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.3)
        inside = ((y - cy) ** 2 + ((x - cx) * width / max(height, 1)) ** 2) < r * r
        base[inside] = rng.uniform(0, 255, 3)
    stripes = 20 * np.sin(2 * np.pi * (x * rng.integers(3, 12) + y * rng.integers(3, 12)))[..., None]
    pixels = base + stripes + rng.normal(0, 6, base.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, mode: str | None = None, quality: int = 90) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=quality)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def correctness_samples(input_size: tuple[int, int]) -> list[Sample]:
    """Six images around the model's input size: exact, smaller, non-square larger, large enough for the
    reduced-scale JPEG decode (>= 4x the input), and two PNGs."""
    h, w = input_size
    specs = [
        ("jpeg_exact", h, w, "jpeg"),
        ("jpeg_smaller", max(h * 3 // 5, 1), max(w * 9 // 20, 1), "jpeg"),
        ("jpeg_wide_larger", h * 3 // 2, w * 21 // 10, "jpeg"),
        ("jpeg_large_4x", h * 9 // 2, w * 9 // 2, "jpeg"),
        ("png_tall", h * 6 // 5, w * 4 // 5, "png"),
        ("png_small", max(h // 3, 1), max(w // 2, 1), "png"),
    ]
    return [Sample(name, encode(photo(sh, sw, seed), fmt), sh, sw, fmt)
            for seed, (name, sh, sw, fmt) in enumerate(specs, start=11)]


# ------------------------------------------------------------------------------------------ bad input

def _segment(data: bytes, marker: bytes) -> int:
    at = data.find(b"\xff" + marker)
    if at < 0:
        raise ValueError(f"no 0xff{marker.hex()} segment in this JPEG")
    return at


def corrupt_huffman_table(jpeg: bytes) -> bytes:
    """A JPEG whose first Huffman table (DHT) is garbage: libjpeg refuses it ("Bogus Huffman table")."""
    data = bytearray(jpeg)
    at = _segment(jpeg, b"\xc4")
    data[at + 5:at + 25] = b"\xff" * 20
    return bytes(data)


def garbage_scan(jpeg: bytes, seed: int = 3) -> bytes:
    """A JPEG with intact headers whose entropy-coded data is random: libjpeg decodes it with a warning."""
    data = bytearray(jpeg)
    start = _segment(jpeg, b"\xda") + 20
    rng = np.random.default_rng(seed)
    data[start:-2] = rng.integers(0, 255, len(data) - 2 - start, dtype=np.uint8).tobytes()  # never 0xff
    return bytes(data)


def declare_jpeg_size(jpeg: bytes, height: int, width: int) -> bytes:
    """The same small JPEG with its frame header (SOF0) claiming height x width."""
    data = bytearray(jpeg)
    at = _segment(jpeg, b"\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def declare_png_size(png: bytes, height: int, width: int) -> bytes:
    """The same small PNG with its IHDR claiming width x height (the CRC is left stale on purpose: a
    decoder that got that far would already have accepted the size)."""
    data = bytearray(png)
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def rgba_png(pixels: np.ndarray, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, pixels.shape[:2], dtype=np.uint8)
    return encode(np.dstack([pixels, alpha]), "png")


def random_bytes(n: int, seed: int = 9) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    # Make sure no image magic number appears by chance at the start.
    return b"\x00" + data[1:]
