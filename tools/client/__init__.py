"""Label images with a served model: send them to TF Serving over REST or gRPC and print the top-k labels.

    python -m tools client --url http://localhost:8501 photo.jpg photos/
    python -m tools client --grpc --host localhost --port 8500 --samples 4
    python -m tools client --url https://serving.example.com --ca-cert ca.pem --label canary cat.jpg

Images are sent as their encoded bytes (the servable decodes and resizes them itself), in requests of
--batch-size images. The library: `label_images(endpoint, images)` returns one Prediction per image,
`format_table(results)` renders them; transports live in tools/client/transport.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from tools.client.images import ImageInput
from tools.client.transport import Endpoint, Prediction, ServerError, make_transport, predict
from tools.errors import UserError


@dataclass
class Labelled:
    image: ImageInput
    prediction: Prediction


def default_model_name() -> str:
    """model.name from the repository's model.yaml: the name TF Serving serves this repository's model under."""
    from tools.config import load_config

    try:
        return load_config().model.name
    except UserError as exc:
        raise UserError(f"no --model given and model.yaml cannot supply one: {exc}") from None


def label_images(endpoint: Endpoint, images: list[ImageInput], batch_size: int = 8) -> tuple[list[Labelled], float]:
    """Send the images in requests of batch_size; returns (one result per image, seconds spent in requests)."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if not images:
        raise UserError("no images to send: give image files or directories, or --samples N")
    transport = make_transport(endpoint)
    results: list[Labelled] = []
    spent = 0.0
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            began = time.perf_counter()
            try:
                predictions = predict(transport, [image.data for image in chunk])
            except ServerError as exc:
                # The server names the problem, not the image: say which request it was.
                names = ", ".join(image.name for image in chunk[:3]) + (", ..." if len(chunk) > 3 else "")
                plural = "s" if len(chunk) > 1 else ""
                raise ServerError(f"{exc} (request of {len(chunk)} image{plural}: {names})") from None
            spent += time.perf_counter() - began
            results += [Labelled(image, p) for image, p in zip(chunk, predictions)]
    finally:
        transport.close()
    return results, spent


def _bar(probability: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(1.0, probability)) * width))
    return "█" * filled + "·" * (width - filled)


def format_table(results: list[Labelled]) -> str:
    """One block per image: rank, label (or class index when the model has no labels), probability, a bar."""
    rows = [("image", "#", "label", "class", "probability", "")]
    for item in results:
        p = item.prediction
        for rank, (cls, prob) in enumerate(zip(p.classes, p.probabilities), 1):
            label = p.labels[rank - 1] if rank - 1 < len(p.labels) and p.labels[rank - 1] else "-"
            name = item.image.name if rank == 1 else ""
            rows.append((name, str(rank), label, str(cls), f"{prob:.4f}", _bar(prob)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {1, 3, 4}

    def line(row):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths[:-1])]
    for i, row in enumerate(rows[1:], 1):
        if row[0] and i > 1:
            out.append("")
        out.append(line(row))
    return "\n".join(out)


def summary(endpoint: Endpoint, results: list[Labelled], seconds: float, batch_size: int) -> str:
    requests = -(-len(results) // batch_size) if results else 0
    protocol = "gRPC" if endpoint.grpc else "REST"
    return (f"{endpoint.servable}, signature {endpoint.signature!r}, via {protocol} {endpoint.where}: "
            f"{len(results)} image{'s' if len(results) != 1 else ''} in {requests} request"
            f"{'s' if requests != 1 else ''}, {seconds * 1000:.0f} ms")
