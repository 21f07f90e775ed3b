"""How a `dosis` command fails: one line (and a gRPC error's violations) on stderr, exit 1."""

from __future__ import annotations

import sys

import click
import grpc

from dosis.client import error_details


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def rpc_failure(err: grpc.RpcError) -> None:
    details = error_details(err)
    click.echo(f"error: {details.code.name} {details.reason}: {details.message}", err=True)
    for v in details.violations:
        click.echo(f"  {v.field}: {v.description} ({v.reason})", err=True)
    sys.exit(1)
