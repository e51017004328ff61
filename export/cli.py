"""Export a Keras ResNet as TF Serving SavedModels in both layouts.

    python -m export                                  # model.yaml's model at model.version
    python -m export --model-file my.keras --labels labels.txt --name my-model --preprocessing none --version 3

Writes <output-dir>/<name>/channels_last/<version>/ (served on CPU) and .../channels_first/<version>/
(served on GPU). Options override model.yaml.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tools import paths
from tools.cliargs import positive_int
from tools.config import (ARCHITECTURES, MAX_IMAGE_PIXELS, MAX_REQUEST_BYTES, MAX_REQUEST_PIXELS,
                          PREPROCESSING_MODES, load_config, request_bounds_problem)
from tools.errors import UserError, run_cli


def _bounded(maximum: int, what: str):
    """A positive integer no larger than `maximum` (an overflow in the graph would otherwise make the servable
    refuse every request)."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} ({what}), got {value}")
        return value

    return parse


image_pixels = _bounded(MAX_IMAGE_PIXELS, "1 gigapixel")
request_pixels = _bounded(MAX_REQUEST_PIXELS, "64 gigapixels")
request_bytes = _bounded(MAX_REQUEST_BYTES, "2 GiB, TF Serving's largest gRPC message")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="model.yaml to read (default: the repository's)")
    p.add_argument("--version", type=positive_int, help="version to export (default: model.version)")
    p.add_argument("--output-dir", type=Path, help=f"where <name>/<layout>/<version>/ go (default: {paths.MODELS_DIR})")
    p.add_argument("--model-file", type=Path, help="your trained Keras model (.keras or .h5); replaces the architecture")
    p.add_argument("--labels", type=Path, help="labels file, one class name per line (default: ImageNet names)")
    p.add_argument("--name", help="TF Serving model name (default: model.name; required with --model-file when "
                                  "model.yaml describes an architecture)")
    p.add_argument("--architecture", choices=ARCHITECTURES, help="Keras applications ResNet to build")
    p.add_argument("--weights", type=Path, help="weights file for the architecture (default: seeded weights)")
    p.add_argument("--seed", type=int, help="seed of the deterministic weights")
    p.add_argument("--classes", type=positive_int, help="output classes of the architecture")
    p.add_argument("--preprocessing", choices=PREPROCESSING_MODES,
                   help="normalization inside the graph: what the model was trained on. auto: the architecture's "
                        "own; for a model file auto is refused unless it has its own Rescaling/Normalization layers")
    p.add_argument("--top-k", type=positive_int, help="classes returned per image")
    p.add_argument("--max-image-pixels", type=image_pixels,
                   help=f"declared width x height above this is rejected (1 to {MAX_IMAGE_PIXELS})")
    p.add_argument("--max-request-pixels", type=request_pixels,
                   help=f"declared pixels of all images of one request above this are rejected before decoding "
                        f"(model.max_request_pixels; at least the image limit, at most {MAX_REQUEST_PIXELS})")
    p.add_argument("--max-request-bytes", type=request_bytes,
                   help=f"encoded bytes of all images of one request above this are rejected (1 to {MAX_REQUEST_BYTES})")
    p.add_argument("--no-jpeg-fast-downscale", action="store_true", help="always decode JPEGs at full size")
    p.add_argument("--no-exif-orientation", action="store_true",
                   help="serve JPEGs as stored, ignoring their EXIF Orientation tag")
    p.add_argument("--layout", action="append", choices=paths.LAYOUTS,
                   help="export only this layout (repeatable; default: both)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def body() -> int:
        from export.api import export_model, with_overrides  # TensorFlow loads only after arguments parse

        if args.model_file and (args.architecture or args.weights):
            raise UserError("--model-file replaces the architecture: do not combine it with --architecture or --weights")
        config = load_config(args.config)
        # The two pixel bounds as they will be exported (options over model.yaml), checked together.
        image_limit = args.max_image_pixels or config.model.max_image_pixels
        request_limit = args.max_request_pixels or config.model.max_request_pixels
        problem = request_bounds_problem(image_limit, request_limit)
        if problem:
            raise UserError(f"--max-request-pixels / model.max_request_pixels {request_limit}: "
                            + problem.replace("model.max_image_pixels", "the image limit"))
        source = config.model.source
        if args.model_file and not args.name and source.model_file is None:
            # model.name names model.yaml's own architecture ("resnet"): never give a user's model that name silently.
            raise UserError(
                f"--model-file {args.model_file.name}: name the export with --name NAME (model.yaml's model.name "
                f"{config.model.name!r} is its {source.architecture}), or set model.name and model.source.model_file "
                "in model.yaml"
            )
        # A source given on the command line replaces the one in model.yaml entirely.
        if args.model_file:
            source = replace(source, model_file=args.model_file.resolve(), weights=None)
        elif args.architecture or args.weights:
            source = replace(source, model_file=None)
        config = replace(config, model=replace(config.model, source=source))
        config = with_overrides(
            config,
            name=args.name,
            labels=args.labels.resolve() if args.labels else None,
            preprocessing=args.preprocessing,
            top_k=args.top_k,
            max_image_pixels=args.max_image_pixels,
            max_request_pixels=args.max_request_pixels,
            max_request_bytes=args.max_request_bytes,
            jpeg_fast_downscale=False if args.no_jpeg_fast_downscale else None,
            exif_orientation=False if args.no_exif_orientation else None,
            source_architecture=args.architecture,
            source_weights=args.weights.resolve() if args.weights else None,
            source_seed=args.seed,
            source_classes=args.classes,
        )
        layouts = tuple(dict.fromkeys(args.layout)) if args.layout else paths.LAYOUTS
        result = export_model(config, version=args.version, output_dir=args.output_dir, layouts=layouts,
                              verbose=not args.quiet)
        for layout, path in result.items():
            print(f"{layout}: {path}")
        return 0

    return run_cli(body)
