"""Human-readable class names, one per model output, in output order."""
from __future__ import annotations

from pathlib import Path

from tools.errors import UserError

IMAGENET_FILE = Path(__file__).with_name("imagenet_labels.txt")
# Models trained with the original TF-slim/Estimator ResNet have 1001 outputs: index 0 is "background"
# and ImageNet's classes follow, which is why the original tutorial's client subtracted one.
BACKGROUND = "background"


def read_labels(path: Path) -> list[str]:
    if Path(path).is_dir():
        raise UserError(f"labels file {path} is a directory; give a text file, one class name per line")
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first label.
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"labels file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"labels file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"labels file {path} cannot be read: {exc.strerror}") from None
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    for n, label in enumerate(labels, 1):
        if not label:
            raise UserError(f"labels file {path}: line {n} is empty; every class needs a name")
    first_line: dict[str, int] = {}
    for n, label in enumerate(labels, 1):
        if label in first_line:
            raise UserError(f"labels file {path}: {label!r} on line {n} repeats line {first_line[label]}; "
                            "each class needs its own name")
        first_line[label] = n
    return labels


def imagenet_labels(num_classes: int) -> list[str]:
    names = read_labels(IMAGENET_FILE)
    if num_classes == len(names):
        return names
    if num_classes == len(names) + 1:
        return [BACKGROUND] + names
    raise UserError(
        f"the model has {num_classes} classes; ImageNet names fit 1000 or 1001 (with background) classes: "
        "give a labels file (--labels or model.labels)"
    )


def resolve_labels(labels_path: Path | None, num_classes: int) -> list[str]:
    if labels_path is None:
        return imagenet_labels(num_classes)
    labels = read_labels(labels_path)
    if len(labels) != num_classes:
        raise UserError(
            f"labels file {Path(labels_path).name} has {len(labels)} labels but the model has {num_classes} classes"
        )
    return labels
