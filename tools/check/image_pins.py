"""`make check`: every image pinned by digest (checkov CKV_K8S_43), or a written waiver that says why not yet.

An image tag can be re-pushed; a digest cannot. Pins live in model.yaml: targets.<t>.image.digest for TF Serving,
images.pins.<name>.digest for the helper images (rclone init step, python smoke test); the overlays' `images:`
carry them into every pod. Without any digest the check fails, unless images.unpinned_waiver gives the reason;
then it passes with a warning naming every unpinned image, so the gap stays visible on every run.
"""
from __future__ import annotations

from typing import Iterable

from tools import paths
from tools.check import CheckContext, CheckResult, register
from tools.check.policies import all_containers, pod_templates, split_image
from tools.errors import UserError


def unpinned_images(objects: list[dict]) -> list[str]:
    refs = set()
    for _, _, spec in pod_templates(objects):
        for c in all_containers(spec):
            ref = str(c.get("image", ""))
            if not split_image(ref)[2]:
                refs.add(ref)
    return sorted(refs)


def pin_mismatches(objects: list[dict], config) -> list[str]:
    """Helper images whose built reference is not the one model.yaml images.pins names."""
    if config.images is None:
        return []
    out = []
    for _, _, spec in pod_templates(objects):
        for c in all_containers(spec):
            repo = split_image(str(c.get("image", "")))[0]
            pin = config.images.pins.get(repo)
            if pin is not None and c.get("image") != pin.reference:
                out.append(f"container {c.get('name')}: image {c.get('image')}, model.yaml images.pins says "
                           f"{pin.reference}")
    return out


@register
def check_image_pins(ctx: CheckContext) -> Iterable[CheckResult]:
    config = ctx.config()
    unpinned, mismatched = set(), []
    for target in config.targets:
        try:
            objects = ctx.build(f"{paths.OVERLAYS_DIR}/{target}")
        except UserError:
            continue  # reported by the build check
        unpinned.update(unpinned_images(objects))
        mismatched += [f"{target}: {m}" for m in pin_mismatches(objects, config)]
    waiver = config.images.unpinned_waiver if config.images else None
    if mismatched:
        yield CheckResult("images: the built images are model.yaml's pins", False, "\n".join(mismatched))
    if not unpinned:
        yield CheckResult("images: every image pinned by digest", True)
    elif waiver:
        yield CheckResult(f"images: WARNING {len(unpinned)} image(s) not pinned by digest, waived in model.yaml "
                          f"images.unpinned_waiver ({waiver})", True, "\n".join(sorted(unpinned)))
    else:
        yield CheckResult("images: every image pinned by digest", False,
                          "\n".join(f"{ref}: no digest (set it in model.yaml, or images.unpinned_waiver: <why>)"
                                    for ref in sorted(unpinned)))
