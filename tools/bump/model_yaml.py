"""Edit model.yaml's `model.version`, `model.digests` and `model.source.sha256` with a round-trip YAML library,
keeping every comment, quote and key order; then prove nothing else changed."""
from __future__ import annotations

import copy
import io

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tools.errors import UserError


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    # ruamel writes null as an empty value; model.yaml spells it out.
    y.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def set_version(text: str, version: int, digests: dict[str, str], source_sha256: str | None = None) -> str:
    """model.yaml text with model.version = version and model.digests = digests (exactly these layouts), and
    model.source.sha256 = source_sha256 (the model or weights file the version was exported from; None: null,
    or left out where the file has no such key)."""
    y = _yaml()
    try:
        data = y.load(text)
    except YAMLError as exc:
        raise UserError(f"model.yaml is not valid YAML: {str(exc).splitlines()[0]}") from None
    model = data["model"]
    model["version"] = version
    if "digests" not in model or model["digests"] is None:
        model["digests"] = {}
    current = model["digests"]
    if current.fa.flow_style() or not current:
        trailer = _to_block(model, current)
    else:
        # The blank line after the block sits on its last entry; it must stay last whatever is added or removed.
        trailer = current.ca.items.pop(list(current)[-1], None)
    for layout in list(current):
        if layout not in digests:
            del current[layout]
    for layout, digest in digests.items():
        current[layout] = digest
    source = model.get("source")
    if source is not None and (source_sha256 is not None or "sha256" in source):
        source["sha256"] = source_sha256
    if trailer is not None and current:
        current.ca.items[list(current)[-1]] = trailer if isinstance(trailer, list) else [None, None, trailer, None]
    out = io.StringIO()
    y.dump(data, out)
    new = out.getvalue()
    _only_model_changed(text, new, version, digests, source_sha256)
    return new


def _to_block(model, digests):
    """`digests: {}  # comment` becomes a block mapping. Its comment stays on the `digests:` line; the blank
    lines that followed it are returned as a comment token to go after the last entry."""
    digests.fa.set_block_style()
    digests.ca.comment = None
    token = model.ca.items.get("digests", [None, None, None, None])[2]
    if token is None:
        return None
    body = token.value.rstrip("\n")
    blank_lines = len(token.value) - len(body) - 1
    token.value = body + "\n"
    if blank_lines <= 0:
        return None
    trailer = copy.copy(token)
    trailer.value = "\n" * (blank_lines + 1)
    return trailer


def _only_model_changed(old: str, new: str, version: int, digests: dict[str, str],
                        source_sha256: str | None) -> None:
    safe = YAML(typ="safe", pure=True)
    before, after = safe.load(old), safe.load(new)
    expected = copy.deepcopy(before)
    expected["model"]["version"] = version
    expected["model"]["digests"] = dict(digests)
    if expected["model"].get("source") is not None and (source_sha256 is not None
                                                        or "sha256" in expected["model"]["source"]):
        expected["model"]["source"]["sha256"] = source_sha256
    if after != expected:
        raise UserError("editing model.yaml would change more than model.version, model.digests and "
                        "model.source.sha256; "
                        "edit it by hand and commit, then run the bump again")
