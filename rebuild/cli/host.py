"""Commands about this host and its roots: doctor, shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, complete_targets, pass_ctx
from rebuild.config.target import load_target
from rebuild.doctor import FAIL, diagnose, format_findings
from rebuild.roots.shell import open_shell


@cli.command()
@click.option("--out", "out_dir", default="artifacts", show_default=True, type=click.Path(path_type=Path),
              help="The output folder builds will use (its filesystem's inode numbers and free space).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_ctx
def doctor(ctx: Context, out_dir: Path, as_json: bool) -> None:
    """What this host needs and has, each with its fix; exit 0 when all is well, 3 otherwise."""

    findings = diagnose(ctx.engine(), ctx.settings, Path(out_dir))
    click.echo(json.dumps([f.__dict__ for f in findings], indent=2) if as_json else format_findings(findings))
    if any(f.status == FAIL for f in findings):
        sys.exit(3)


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--result", type=click.Path(path_type=Path),
              help="A result folder: its build root, and its tree (a failed build's) or files mounted.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def shell(ctx: Context, target: str, result: Path | None, command: tuple[str, ...]) -> None:
    """A shell (or COMMAND, after --) in a fresh container of TARGET's root, as the build user, under its
    personality; removed on exit.

    rebuild shell rh73 --result artifacts/sendmail-8.12.8-9.80.failed   |   rebuild shell rh73 -- uname -m
    """

    argv = list(command)
    code = open_shell(load_target(target, ctx.settings.home), ctx.engine(), ctx.settings.cache, result, argv,
                      tty=not argv and sys.stdin.isatty() and sys.stdout.isatty())
    sys.exit(code)
