"""The figures of issue 13's "Done when", measured on an export (docs/hostile-input.md quotes them).

    python -m tests.hostile.measure build/models/resnet/channels_last/1 [--frames 100 --side 4000]

- a GIF of `frames` frames of side x side (each under the pixel limit): peak memory growth and time of one
  request, measured in a fresh process (VmHWM reset per call, as make validate measures);
- an 8-bit palette BMP against the JPEG and the PNG of the same RGB pixels: top-1 of each;
- a JPEG stored turned with EXIF Orientation 2-8 against the upright JPEG: largest probability difference;
- the request bounds (`--request-bounds-child`, in a fresh process, no export needed): the corpus' over-bound
  request of 12 MP PNGs decoded with and without the bounds (peak memory growth, time), and the bounds' cost
  on a batch of 32 small JPEGs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tools.validate import corpus


def _gif(frames: int, side: int) -> bytes:
    palette = [v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)]
    images = []
    for i in range(frames):
        f = Image.new("P", (side, side), i % 256)
        f.putpalette(palette)
        images.append(f)
    return corpus.save(images[0], "GIF", save_all=True, append_images=images[1:], duration=40)


def _served(path: str):
    from tools.validate.serving import LoadedExport

    return LoadedExport(path, "channels_last", "model", None)


def gif_child(path: str, frames: int, side: int) -> dict:
    from tools.validate import badinput

    data = _gif(frames, side)
    export = _served(path)
    export.predict([corpus.save(corpus.photo(64, 64), "JPEG")])  # warm: kernels built, model run once
    start = time.monotonic()
    with badinput.PeakMemory() as peak:
        try:
            export.predict([data])
            result = "prediction"
        except Exception as exc:  # noqa: BLE001 (reported, not hidden)
            result = f"refused: {str(exc)[:120]}"
    return {"gif_bytes": len(data), "frames": frames, "side": side, "result": result,
            "seconds": round(time.monotonic() - start, 2), "peak_growth_mb": round(peak.growth_mb, 1),
            "measured_by": peak.method}


def palette_bmp(export) -> dict:
    px = corpus.photo(224, 224, seed=77)
    quantized = Image.fromarray(px).quantize(256)
    rgb = np.asarray(quantized.convert("RGB"))
    answers = {}
    for name, data in (("bmp_8bit_palette", corpus.save(quantized, "BMP")),
                       ("jpeg_rgb_q95", corpus.save(rgb, "JPEG", quality=95)),
                       ("png_rgb", corpus.png_of(rgb))):
        out = export.predict([data])
        answers[name] = {"top1": int(out["classes"][0, 0]), "p_top1": float(out["probabilities"][0, 0])}
    diff = float(np.abs(export.predict([corpus.save(quantized, "BMP")])["probabilities"]
                        - export.predict([corpus.png_of(rgb)])["probabilities"]).max())
    return {**answers, "bmp_equals_jpeg_top1": answers["bmp_8bit_palette"]["top1"] == answers["jpeg_rgb_q95"]["top1"],
            "bmp_vs_png_max_prob_diff": diff}


# The stored pixels for orientation o: the inverse of the turn Pillow's exif_transpose applies.
_STORED = {
    2: lambda u: u[:, ::-1], 3: lambda u: u[::-1, ::-1], 4: lambda u: u[::-1], 5: lambda u: u.transpose(1, 0, 2),
    6: lambda u: np.rot90(u, 1), 7: lambda u: np.rot90(u, 2).transpose(1, 0, 2), 8: lambda u: np.rot90(u, -1),
}


def exif(export) -> dict:
    """Per orientation, the largest probability difference from the upright image:
    - q95 / q100_444: the upright photo and its turned copy each saved as JPEG (quality 95 with 4:2:0 chroma, or
      quality 100 with 4:4:4); part of the difference is JPEG coding the turned pixels differently;
    - graph: the stored JPEG against a PNG of exactly its decoded pixels turned by Pillow's exif_transpose,
      which isolates what the graph does."""
    import tensorflow as tf
    from PIL import ImageOps

    upright = corpus.photo(480, 320, seed=78)  # portrait, multiples of 16: JPEG blocks line up after a turn
    out = {}
    for label, kw in (("q95", {"quality": 95}), ("q100_444", {"quality": 100, "subsampling": 0})):
        base = export.predict([corpus.save(upright, "JPEG", **kw)])
        for o, stored in _STORED.items():
            jpeg = corpus.save(np.ascontiguousarray(stored(upright)), "JPEG", **kw)
            got = export.predict([corpus.with_exif(jpeg, o)])
            row = out.setdefault(str(o), {})
            row[label] = float(np.abs(got["probabilities"] - base["probabilities"]).max())
            row[f"{label}_same_classes"] = bool((got["classes"] == base["classes"]).all())
            if label == "q95":
                pixels = Image.fromarray(tf.io.decode_jpeg(jpeg, channels=3).numpy())
                exif_data = pixels.getexif()
                exif_data[0x0112] = o
                turned = np.asarray(ImageOps.exif_transpose(pixels))
                ref = export.predict([corpus.png_of(turned)])
                row["graph"] = float(np.abs(got["probabilities"] - ref["probabilities"]).max())
        if label == "q95":
            no_exif = export.predict([corpus.save(np.ascontiguousarray(_STORED[6](upright)), "JPEG", **kw)])
            out["6_stored_turned_without_exif_q95"] = float(np.abs(no_exif["probabilities"]
                                                                   - base["probabilities"]).max())
    return out


def request_bounds_child() -> dict:
    """The preprocessing graph alone (no model), with model.yaml's default bounds and without any."""
    import tensorflow as tf

    from export import preprocess
    from tools.config import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_PIXELS
    from tools.validate import badinput

    size, limit = (224, 224), 40_000_000
    over = next(c for c in corpus.request_cases(limit, DEFAULT_MAX_REQUEST_PIXELS, DEFAULT_MAX_REQUEST_BYTES, size)
                if c.name == "request_over_pixel_bound")
    spec = [tf.TensorSpec([None], tf.string)]  # one trace for every batch size, as in the SavedModel
    bounded = tf.function(lambda s: preprocess.decode_batch(s, size, limit, max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
                                                            max_request_bytes=DEFAULT_MAX_REQUEST_BYTES),
                          input_signature=spec)
    unbounded = tf.function(lambda s: preprocess.decode_batch(s, size, limit), input_signature=spec)
    small = tf.constant([corpus.save(corpus.photo(240 + i, 320, seed=i), "JPEG", quality=90) for i in range(32)])
    for f in (bounded, unbounded):
        f(small)  # traced and warm
    out = {"request": over.description}
    for name, f in (("with_bounds", bounded), ("without_bounds", unbounded)):
        start = time.monotonic()
        with badinput.PeakMemory() as peak:
            try:
                f(tf.constant(over.images))
                result = "decoded"
            except tf.errors.InvalidArgumentError as exc:
                lines = exc.message.splitlines()
                result = "refused: " + next((ln for ln in lines if "request holds" in ln), lines[0])[:160]
        out[name] = {"result": result, "seconds": round(time.monotonic() - start, 3),
                     "peak_growth_mb": round(peak.growth_mb, 1)}
    times = {"with_bounds": [], "without_bounds": []}
    for _ in range(40):  # interleaved, so a busy moment on the shared machine hits both alike
        for name, f in (("with_bounds", bounded), ("without_bounds", unbounded)):
            start = time.perf_counter()
            f(small)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        out[f"32_small_jpegs_fastest_ms_{name}"] = round(1000 * min(values), 2)
        out[f"32_small_jpegs_median_ms_{name}"] = round(1000 * sorted(values)[len(values) // 2], 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.hostile.measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--side", type=int, default=4000)
    p.add_argument("--gif-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-gif", action="store_true", help="skip the GIF measurement")
    p.add_argument("--request-bounds-child", action="store_true",
                   help="only the request bounds' figures (export_dir is not read)")
    args = p.parse_args(argv)
    if args.request_bounds_child:
        print(json.dumps(request_bounds_child(), indent=2))
        return 0
    if args.gif_child:
        print(json.dumps(gif_child(args.export_dir, args.frames, args.side)))
        return 0
    figures = {}
    child = None if args.no_gif else subprocess.run([sys.executable, "-m", "tests.hostile.measure", args.export_dir, "--gif-child",
                            "--frames", str(args.frames), "--side", str(args.side)],
                           capture_output=True, text=True, check=True)
    if child is not None:
        figures["gif"] = json.loads(child.stdout.strip().splitlines()[-1])
    export = _served(args.export_dir)
    figures["palette_bmp"] = palette_bmp(export)
    figures["exif"] = exif(export)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
