"""`make validate` / `python -m tools validate`: prove each exported version works exactly as TF Serving
will call it, before anything is deployed.

    python -m tools validate                      # model.version of model.name under build/models
    python -m tools validate --version 3          # one version, both layouts (--all: every version)
    python -m tools validate build/models/resnet/channels_last/3 build/models/resnet/channels_first/3

Library: `validate(config, version=None, models_dir=None, paths_=None, reports_dir=None) -> Report` checks one
version and writes build/reports/validate-<name>-v<N>.{json,md}; `validate_all(config, ...)` every version.
Keyword options: accept_not_run, source_file, use_capi (see runner.validate). Every export is loaded through
TF Serving's C++ loader (tools.validate.capi) and run by its SignatureDef's tensor names.
`tools.validate.tfs_formats` holds TF Serving's REST and gRPC request/response rules for reuse.
TensorFlow is imported only when a validation runs, so `--help` stays fast.
"""
from __future__ import annotations

from tools.validate.report import Check, Report


def validate(config, version=None, models_dir=None, paths_=None, reports_dir=None, **kwargs) -> Report:
    """Validate one version (default model.version) of both layouts, or the version directories `paths_`."""
    from tools.validate import runner

    return runner.validate(config, version, models_dir, paths_, reports_dir, **kwargs)


def validate_all(config, models_dir=None, reports_dir=None, **kwargs) -> list[Report]:
    """Validate every exported version of config.model.name under models_dir: one report per version."""
    from tools.validate import runner

    return runner.validate_all(config, models_dir, reports_dir, **kwargs)


__all__ = ["Check", "Report", "validate", "validate_all"]
