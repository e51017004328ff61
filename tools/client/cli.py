"""`python -m tools client [IMAGE|DIR ...] [--samples N] [endpoint options]`: argument parsing only."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools import paths
from tools.cliargs import positive_int
from tools.errors import run_cli


def add_endpoint_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say where the model is served and which servable to call (shared with profile)."""
    where = p.add_argument_group("endpoint")
    where.add_argument("--url", help="REST: http(s)://host[:port][/prefix]; gRPC: [grpc(s)://]host[:port] "
                       "(instead of --host/--port)")
    where.add_argument("--host", default=None, help="server host (default: localhost)")
    where.add_argument("--port", type=int, default=None, help="server port (default: 8501 REST, 8500 gRPC)")
    where.add_argument("--grpc", action="store_true", help="use gRPC PredictionService instead of REST")
    where.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default: 30)")
    what = p.add_argument_group("servable")
    what.add_argument("--model", default=None, help="model name (default: model.name in model.yaml)")
    pick = what.add_mutually_exclusive_group()
    pick.add_argument("--version", type=positive_int, default=None, help="a specific model version (default: the latest)")
    pick.add_argument("--label", default=None, help="a version label, e.g. stable or canary")
    what.add_argument("--signature", default=paths.SERVING_SIGNATURE,
                      help=f"signature to call (default: {paths.SERVING_SIGNATURE}; "
                      f"`{paths.PREDICT_ALIAS}` also works)")
    tls = p.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect with TLS (implied by https:// and grpcs:// URLs)")
    tls.add_argument("--ca-cert", type=Path, default=None,
                     help="PEM file of the CA that signed the server's certificate")
    tls.add_argument("--insecure-skip-verify", action="store_true",
                     help="REST only: do not verify the server's certificate")


def endpoint_from_args(args: argparse.Namespace):
    from tools.client import default_model_name
    from tools.client.transport import Endpoint, parse_url
    from tools.errors import UserError

    fields = {}
    if args.url:
        if args.host or args.port:
            raise UserError("give either --url or --host/--port, not both")
        fields = parse_url(args.url, args.grpc)
        fields["tls"] = fields["tls"] or args.tls
    else:
        fields = {"host": args.host or "localhost", "port": args.port, "tls": args.tls}
    return Endpoint(
        model=args.model or default_model_name(),
        grpc=args.grpc,
        ca_cert=args.ca_cert,
        insecure_skip_verify=args.insecure_skip_verify,
        version=args.version,
        label=args.label,
        signature=args.signature,
        timeout=args.timeout,
        **fields,
    )


def build_parser() -> argparse.ArgumentParser:
    from tools import client

    p = argparse.ArgumentParser(
        prog="python -m tools client",
        description=client.__doc__.split("\n\n")[0],
        epilog="Exit status 0 when every image was labelled; 2 with a one-line error otherwise.",
    )
    p.add_argument("images", nargs="*", help="image files (JPEG, PNG, GIF, BMP) and directories of them")
    p.add_argument("--samples", type=positive_int, default=None, metavar="N", help="send N generated photo-like JPEGs")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per request (default: 8)")
    add_endpoint_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from tools import client
        from tools.client import images

        endpoint = endpoint_from_args(args)
        inputs = images.collect(args.images)
        if args.samples is not None:
            inputs += images.samples(args.samples)
        results, seconds = client.label_images(endpoint, inputs, args.batch_size)
        print(client.summary(endpoint, results, seconds, args.batch_size))
        print()
        print(client.format_table(results))
        return 0

    return run_cli(body)
