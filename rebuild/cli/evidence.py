"""Commands on the evidence of a build: diff (two packages or two folders), verify-provenance."""

from __future__ import annotations

from pathlib import Path

import click

from rebuild.cli.main import Context, cli, pass_ctx
from rebuild.evidence import rpmdiff
from rebuild.evidence.provenance import failures, verify
from rebuild.log import printable


@cli.command()
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@pass_ctx
def diff(ctx: Context, a: Path, b: Path, as_json: bool) -> None:
    """Compare two RPMs (or two folders of RPMs, matched by name and arch): files added, removed and changed,
    Requires/Provides/Conflicts/Obsoletes, ELF NEEDED sonames, header tags. Exit 0 same, 1 differences."""

    pairs, only_a, only_b = rpmdiff.pair(a, b)
    if not pairs and not only_a and not only_b:
        raise click.UsageError(f"no RPMs in {a} or {b}")
    diffs = [rpmdiff.compare(rpmdiff.read_package(x), rpmdiff.read_package(y)) for x, y in pairs]
    click.echo(rpmdiff.diff_json(diffs, only_a, only_b) if as_json else rpmdiff.format_diff(diffs, only_a, only_b))
    if only_a or only_b or any(not d.same for d in diffs):
        raise click.exceptions.Exit(1)


@cli.command("verify-provenance")
@click.argument("location", type=click.Path(exists=True, path_type=Path))
@pass_ctx
def verify_provenance(ctx: Context, location: Path) -> None:
    """Check the provenance statement(s) of a result folder or a published repository: the in-toto/SLSA
    shape, and every subject's sha256 against the RPM of that name. Exit 1 if any does not match."""

    results = verify(location)
    for r in results:
        click.echo(printable(f"{'ok      ' if r.status == 'ok' else r.status.upper().ljust(8)}  {r.name}"
                             + ("" if r.status == "ok" else f"  ({r.detail})")))
    problem = failures(results)
    if problem is not None:
        raise problem
