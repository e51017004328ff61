"""Record the golden set at validation: the export's answers to the reference images (and the user's samples).

`record_layout(report, layout, export, config, input_size)` is called once per layout by tools/validate with
the loaded export (anything with `.predict(list_of_bytes)` returning the serving outputs). It answers every
image alone (what the cluster is later asked one request per image), checks that one batch of all of them
answers the same, measures each image's top-1 margin, and stores images and answers in
`report.golden_set` (the "golden_set" field of the report JSON), from which `make bump` renders each
overlay's golden-set ConfigMap (overlay.py).
"""
from __future__ import annotations

import base64

from tools import paths
from tools.config import Config, golden_tolerance_for
from tools.goldenset.images import GoldenImage, reference_images, sample_images

FORMAT = 1
# Probabilities are stored with 8 significant digits: float32 carries about 7, so nothing is lost, and the
# committed answers stay readable in a pull request.
DIGITS = 8


def rounded(value: float) -> float:
    return float(f"{float(value):.{DIGITS}g}")


def image_entry(image: GoldenImage) -> dict:
    """An image as the report stores it (the bytes base64-encoded)."""
    return {"name": image.name, "source": image.source, "label": image.label, "format": image.fmt,
            "mode": image.mode, "width": image.width, "height": image.height, "bytes": len(image.data),
            "sha256": image.sha256, "data": base64.b64encode(image.data).decode("ascii")}


def answer_rows(outputs: dict) -> list[dict]:
    """One {classes, labels, probabilities} per image from the signature's outputs (numpy arrays)."""
    rows = []
    for classes, labels, probabilities in zip(outputs[paths.OUTPUT_CLASSES], outputs[paths.OUTPUT_LABELS],
                                              outputs[paths.OUTPUT_PROBABILITIES]):
        rows.append({"classes": [int(c) for c in classes],
                     "labels": [label.decode("utf-8") if isinstance(label, bytes) else str(label) for label in labels],
                     "probabilities": [rounded(p) for p in probabilities]})
    return rows


def top1_margin(probabilities: list[float]) -> float | None:
    """How far top-1 leads top-2; None with top_k 1 (the second class is not in the answer)."""
    return rounded(probabilities[0] - probabilities[1]) if len(probabilities) > 1 else None


def max_difference(a: dict, b: dict) -> float:
    """The largest |p_a - p_b| over the classes both answers hold (1.0 when a class of one is missing)."""
    pb = dict(zip(b["classes"], b["probabilities"]))
    if set(pb) != set(a["classes"]):
        return 1.0
    return max((abs(p - pb[c]) for c, p in zip(a["classes"], a["probabilities"])), default=0.0)


def layout_margin(config: Config, layout: str) -> float:
    """The widest min_top1_margin of the targets serving the layout: the report flags against that."""
    margins = [golden_tolerance_for(t).min_top1_margin for t in config.targets_for_layout(layout)]
    return max(margins) if margins else 0.0


def layout_probability(config: Config, layout: str) -> float:
    """The tightest probability tolerance of the targets serving the layout."""
    values = [golden_tolerance_for(t).probability for t in config.targets_for_layout(layout)]
    return min(values) if values else 0.0


def record_layout(report, layout: str, export, config: Config, input_size: tuple[int, int]) -> dict | None:
    """Answer the golden set with `export` and store it in report.golden_set; returns this layout's entry."""
    images = reference_images(tuple(input_size)) + sample_images(config.model.samples_dir)
    golden = report.golden_set
    golden.setdefault("format", FORMAT)
    stored = golden.setdefault("images", {})
    for image in images:
        known = stored.get(image.name)
        if known is not None and known["sha256"] != image.sha256:
            # Both layouts answer the same bytes (same input size); anything else is a bug, not a result.
            report.add("golden_set.recorded", layout, False,
                       f"{image.name} differs from the image the other layout answered (input sizes differ?)")
            return None
        stored.setdefault(image.name, image_entry(image))
    alone = [answer_rows(export.predict([image.data]))[0] for image in images]
    batch = answer_rows(export.predict([image.data for image in images]))
    margin_bound = layout_margin(config, layout)
    answers = []
    for image, row in zip(images, alone):
        margin = top1_margin(row["probabilities"])
        answers.append({"name": image.name, **row, "margin": margin,
                        "stable": margin is not None and margin >= margin_bound})
    digest = report.exports[layout].digest if layout in report.exports else None
    entry = {"digest": digest, "top_k": len(alone[0]["classes"]) if alone else 0, "answers": answers}
    golden.setdefault("layouts", {})[layout] = entry

    unstable = [a["name"] for a in answers if not a["stable"]]
    samples = sum(1 for i in images if i.source != "reference")
    report.add("golden_set.recorded", layout, True,
               f"{len(images)} images ({samples} of them your samples), answered one at a time; "
               + (f"{len(unstable)} flagged unstable (top-1 leads top-2 by less than {margin_bound:g}, so their "
                  f"top-1 is not checked after a sync): {', '.join(unstable)}" if unstable
                  else f"every top-1 leads top-2 by at least {margin_bound:g}"),
               images=len(images), unstable=len(unstable),
               min_margin=min((a["margin"] for a in answers if a["margin"] is not None), default=None))
    worst = max((max_difference(a, b) for a, b in zip(alone, batch)), default=0.0)
    bound = layout_probability(config, layout)
    report.add("golden_set.batch", layout, worst <= bound,
               f"one batch of all {len(images)} answers as each image alone: max |dp| = {worst:.3g} "
               f"({'within' if worst <= bound else 'OVER'} the tightest target tolerance {bound:g})",
               max_abs_diff=worst)
    from tools.goldenset.overlay import check_size  # the ConfigMap budget, checked here too so validate says it

    for target in config.targets_for_layout(layout):
        size, limit = check_size(golden, layout, config, target, raise_over=False)
        report.add("golden_set.size", layout, size <= limit,
                   f"{target.name} overlay's golden-set ConfigMap: {size / 1024:.1f} KiB of {limit / 1024:.0f} KiB",
                   bytes=size, limit=limit)
    return entry


def markdown(golden: dict) -> list[str]:
    """The golden set as the report's markdown shows it (and so the bump's pull request): one row per image."""
    layouts = golden.get("layouts", {})
    if not layouts:
        return []
    names = list(golden.get("images", {}))
    lines = ["", "Golden set (replayed by the PostSync smoke test after every sync; * = top-1 lead too small to "
                 "check top-1):", "",
             "| Image | Size | " + " | ".join(f"{lay} top-1 (p, lead)" for lay in layouts) + " |",
             "|---|---|" + "---|" * len(layouts)]
    for name in names:
        image = golden["images"][name]
        cells = []
        for entry in layouts.values():
            answer = next((a for a in entry["answers"] if a["name"] == name), None)
            if answer is None:
                cells.append("-")
                continue
            lead = "-" if answer["margin"] is None else f"{answer['margin']:.3g}"
            cells.append(f"{answer['labels'][0]} ({answer['probabilities'][0]:.3g}, {lead})"
                         f"{'' if answer['stable'] else ' *'}")
        lines.append(f"| `{name}` | {image['format']} {image['width']}x{image['height']} {image['mode']} | "
                     + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines
