"""The option groups every cluster-reading CLI shares (tools/cliargs.py): one parse, one error text."""
from __future__ import annotations

import pytest

from tools.rollout import cli as rollback_cli
from tools.status import cli as status_cli


@pytest.mark.parametrize("cli", [status_cli, rollback_cli], ids=["status", "rollback"])
def test_cluster_contexts_parse_the_same_in_every_cli(cli):
    args = cli.build_parser().parse_args(["--kubeconfig", "/k", "--context", "argo",
                                          "--cluster", "prod=gke-prod", "--cluster", "https://10.0.0.1=eks"])
    assert (args.kubeconfig, args.context) == ("/k", "argo")
    assert dict(args.cluster) == {"prod": "gke-prod", "https://10.0.0.1": "eks"}


@pytest.mark.parametrize("cli", [status_cli, rollback_cli], ids=["status", "rollback"])
@pytest.mark.parametrize("bad", ["prod", "=ctx", "prod="])
def test_a_cluster_without_context_is_a_usage_error_naming_the_form(cli, bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["--cluster", bad])
    assert exit_.value.code == 2
    assert f"expected CLUSTER=CONTEXT, got {bad!r}" in capsys.readouterr().err
