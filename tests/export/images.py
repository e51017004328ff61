"""Encoded test images made on the spot with Pillow (no files, no downloads)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth, photo-like RGB pixels (JPEG-friendly), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.28, 3)
    channels = [127 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + 2 * c) + phase[c]) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def encode(pixels_or_image, fmt: str, mode: str | None = None, **save_args) -> bytes:
    img = pixels_or_image if isinstance(pixels_or_image, Image.Image) else Image.fromarray(pixels_or_image)
    if mode:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **save_args)
    return buf.getvalue()


def jpeg(height=60, width=80, seed=0, **kw) -> bytes:
    return encode(photo(height, width, seed), "JPEG", quality=95, **kw)


def png(height=60, width=80, seed=0, mode=None) -> bytes:
    return encode(photo(height, width, seed), "PNG", mode=mode)


def with_jpeg_size(data: bytes, height: int, width: int) -> bytes:
    """The same JPEG with the frame header (SOF0) claiming another size: a decompression-bomb stand-in."""
    out = bytearray(data)
    i = out.find(b"\xff\xc0")
    out[i + 5:i + 7] = height.to_bytes(2, "big")
    out[i + 7:i + 9] = width.to_bytes(2, "big")
    return bytes(out)


def with_png_size(data: bytes, height: int, width: int) -> bytes:
    out = bytearray(data)
    out[16:20] = width.to_bytes(4, "big")
    out[20:24] = height.to_bytes(4, "big")
    return bytes(out)


def two_frame_gif(height=30, width=40) -> bytes:
    """Frame 1 solid red, frame 2 solid blue: decoding must give the first frame."""
    red = Image.new("RGB", (width, height), (255, 0, 0))
    blue = Image.new("RGB", (width, height), (0, 0, 255))
    buf = io.BytesIO()
    red.save(buf, "GIF", save_all=True, append_images=[blue], duration=100)
    return buf.getvalue()
