"""The command group, the context every command gets, and ``main``: the one place errors are caught.

Exit codes (see ``rebuild.errors``): 0 ok, 1 a check found problems, 2 bad input or
usage, 3 environment (no engine, image missing), 10 build failed, 130 interrupted.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from rebuild import __version__
from rebuild.config.target import available_targets
from rebuild.errors import RebuildError
from rebuild.log import Log
from rebuild.settings import Settings
from rebuild.systems.dockerengine import DockerEngine


class Context:
    def __init__(self, quiet: bool, verbose: bool) -> None:
        self.settings = Settings.from_env()
        self.log = Log(quiet=quiet, ci=self.settings.ci)
        self.verbose = verbose

    def engine(self):
        return DockerEngine(self.log, keep_containers=self.settings.keep_containers, transfer=self.settings.transfer,
                            docker_host=self.settings.docker_host)


pass_ctx = click.make_pass_decorator(Context)


def complete_targets(ctx, param, incomplete: str) -> list[str]:
    """Shell completion: the targets under containers/."""

    return [name for name in available_targets() if name.startswith(incomplete)]


def complete_recipes(ctx, param, incomplete: str) -> list[str]:
    """Shell completion: the recipes under specs/ (and any path)."""
    from click.shell_completion import CompletionItem

    home = Settings.from_env().home
    names = sorted(str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p)
                   for p in (home / "specs").rglob("*.yaml"))
    return [CompletionItem(n) for n in names if n.startswith(incomplete)] or [CompletionItem(incomplete, type="file")]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rebuild")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("-v", "--verbose", is_flag=True, help="Echo rpmbuild's output as it runs.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (specs/, containers/); default: REBUILD_HOME, else the nearest folder"
                   " upward holding specs/ or containers/, else the current folder.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, home: Path | None) -> None:
    """Rebuild source RPMs from a newer release for an older one, in a container."""
    if home is not None:  # one place decides: what reads the environment later sees it too
        os.environ["REBUILD_HOME"] = str(home.resolve())
    try:
        ctx.obj = Context(quiet, verbose)
    except RebuildError as exc:  # a bad REBUILD_MIRROR
        raise click.UsageError(exc.message) from None


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: catch every expected error once, print one line, exit with its code."""
    try:
        _main(argv)
    finally:
        # The work is done and cleaned up. Python resets Ctrl-C to its default while it shuts
        # down, so one arriving now would kill the process by signal instead of the exit code
        # already chosen: ignore it (and SIGTERM) from here on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _main(argv: list[str] | None) -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="rebuild", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("rebuild: interrupted; containers and partial results were removed", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "rebuild"
        print(f"rebuild: error: {_one_line(exc.format_message())} (see `{where} --help`)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        print(f"rebuild: error: {_one_line(exc.format_message())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except RebuildError as exc:
        print(f"rebuild: error: {_one_line(exc.message)}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        # the machine, not the input: a full disk, a permission, a vanished file
        where = f": {exc.filename}" if exc.filename else ""
        print(f"rebuild: error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    """The message on one line: a value quoted into it cannot add lines of its own."""
    return "".join(ch if ch.isprintable() else "\\n" if ch == "\n" else "?" for ch in message)
