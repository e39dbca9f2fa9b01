"""The command line: parse arguments, call one library function, format, pick the exit code.

Exit codes (see ``rebuild.errors``): 0 ok, 1 a check found problems, 2 bad input or
usage, 3 environment (no engine, image missing), 10 build failed, 130 interrupted.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
from pathlib import Path

import click

from rebuild import __version__
from rebuild.errors import RebuildError
from rebuild.log import Log


class Context:
    def __init__(self, quiet: bool, verbose: bool) -> None:
        self.log = Log(quiet=quiet)
        self.verbose = verbose

    def engine(self):
        from rebuild.engine import DockerEngine

        return DockerEngine(self.log)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rebuild")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("-v", "--verbose", is_flag=True, help="Echo rpmbuild's output as it runs.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Rebuild source RPMs from a newer release for an older one, in a container."""
    ctx.obj = Context(quiet, verbose)


@cli.command()
@click.argument("target")
@click.option("--force", is_flag=True, help="Make the root again even when a cached one matches.")
@click.option("--mirror", help="rpmtree targets: the release's RPM tree (URL or folder; RedHat/RPMS layout or flat).")
@click.option("--updates", help="rpmtree targets: the updates tree, preferred where newer.")
@pass_ctx
def image(ctx: Context, target: str, force: bool, mirror: str | None, updates: str | None) -> None:
    """Make the image of TARGET (cached; later calls reuse it) and pin its ID."""
    from rebuild.image import make_image
    from rebuild.targets import load_target

    pin = make_image(load_target(target), ctx.engine(), ctx.log, force=force, mirror=mirror, updates=updates)
    click.echo(f"{pin.tag} {pin.image_id}")


@cli.command()
@click.argument("recipes", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--target", "target_name", help="Build on this target instead of the recipe's.")
@click.option("--out", "out_dir", default="artifacts", show_default=True, type=click.Path(path_type=Path),
              help="Results go to OUT/<name>-<version>-<release>/.")
@click.option("--skip-deps-check", is_flag=True, help="Build even when the floors are not met (recorded).")
@click.option("--force", is_flag=True, help="Build even when an intact result with the same inputs exists.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Builds at once [default: the number of cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_ctx
def build(ctx: Context, recipes: tuple[Path, ...], target_name: str | None, out_dir: Path,
          skip_deps_check: bool, force: bool, jobs: int | None, as_json: bool) -> None:
    """Build each RECIPE (specs/<name>.yaml) in a fresh container.

    Unchanged inputs reuse the stored result ("up to date"). Several recipes build in
    parallel; a summary table follows, and the exit code is 10 if any failed.
    """
    import os

    from rebuild.build import build_many, summary_table
    from rebuild.errors import BuildFailed
    from rebuild.recipe import load_recipe
    from rebuild.targets import load_target

    loaded = [load_recipe(path) for path in recipes]
    pairs = [(recipe, load_target(target_name or recipe.target)) for recipe in loaded]
    echo = (lambda chunk: sys.stderr.buffer.write(chunk) and sys.stderr.flush()) if ctx.verbose else None
    items = build_many(pairs, ctx.engine(), ctx.log, out_dir=out_dir, parallel=jobs or os.cpu_count() or 1,
                       skip_deps_check=skip_deps_check, force=force, echo=echo)
    done = [item.result for item in items if item.result is not None]
    if as_json:
        click.echo(json.dumps([{"recipe": str(i.recipe.path), "ok": i.result is not None,
                                "directory": str(i.result.directory) if i.result else None,
                                "cached": i.result.cached if i.result else None,
                                "error": getattr(i.error, "message", None),
                                "outputs": list(i.result.outputs) if i.result else []} for i in items], indent=2))
    else:
        for result in done:
            for output in result.outputs:
                click.echo(result.directory / output["file"])
            click.echo(result.directory / "manifest.json")
    if len(items) > 1:
        ctx.log.info(summary_table(items))
    failed = [item for item in items if item.result is None]
    if len(items) == 1 and failed:
        raise failed[0].error
    if failed:
        raise BuildFailed(f"{len(failed)} of {len(items)} builds failed: {', '.join(i.recipe.name for i in failed)}")


@cli.command()
@click.argument("recipes", nargs=-1, type=click.Path(path_type=Path))
def targets(recipes: tuple[Path, ...]) -> None:
    """List the targets RECIPES build on (all known targets when none is given)."""
    from rebuild.recipe import load_recipe
    from rebuild.targets import available_targets

    names = sorted({load_recipe(p).target for p in recipes}) if recipes else available_targets()
    for name in names:
        click.echo(name)


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Redefine an existing %define/%global.")
@click.option("--add", "adds", multiple=True, metavar="NAME=VALUE", help="Define a new macro at the top.")
@click.option("--release-suffix", default="", help="Append this to Release (e.g. .rb1).")
@click.option("--output", type=click.Path(path_type=Path), help="Write here instead of editing in place.")
@pass_ctx
def patch(ctx: Context, spec: Path, sets: tuple[str, ...], adds: tuple[str, ...], release_suffix: str,
          output: Path | None) -> None:
    """Edit macro definitions in SPEC and print the unified diff.

    In place, the original is kept as SPEC.orig (an existing .orig is never overwritten).
    """
    from rebuild.recipe import SpecEdits
    from rebuild.spec import patch_file

    if not (sets or adds or release_suffix):
        raise click.UsageError("give at least one --set NAME=VALUE, --add NAME=VALUE or --release-suffix")
    edits = SpecEdits(macros=_pairs(sets, "--set"), add_macros=_pairs(adds, "--add"), release_suffix=release_suffix)
    result = patch_file(spec, edits, output=output)
    for note in result.notes:
        ctx.log.warn(note)
    if result.changed:
        click.echo(result.diff(), nl=False)
    else:
        ctx.log.info(f"{spec}: nothing to change")


@cli.command()
@click.argument("source")
@click.option("--sha256", "sha", help="Expected sha256 (overrides nothing: it must agree with any other pin).")
@click.option("--dest", type=click.Path(path_type=Path), help="Also copy the verified file into this folder.")
@click.option("--lock", is_flag=True, help="No pin yet: record the sha256 seen into specs/<recipe>.lock (trust on first use).")
@click.option("--mirror", "mirrors", multiple=True, metavar="FROM=TO",
              help="Rewrite a URL prefix (tried before the original); also $REBUILD_MIRROR.")
@click.option("--max-size", type=click.IntRange(min=1), default=512 << 20, show_default=True, help="Size cap in bytes.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds without data before a retry.")
@pass_ctx
def fetch(ctx: Context, source: str, sha: str | None, dest: Path | None, lock: bool, mirrors: tuple[str, ...],
          max_size: int, timeout: float) -> None:
    """Download and verify SOURCE (a recipe or a URL) into the content-addressed cache; print its path."""
    import os
    import re
    import shutil
    from urllib.parse import urlparse

    from rebuild import fetch as fetching
    from rebuild.errors import UsageError

    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise click.UsageError("--sha256 takes 64 hex digits")
    sha = sha.lower() if sha else None
    pairs = fetching.parse_mirrors(" ".join([os.environ.get("REBUILD_MIRROR", ""), *mirrors]))
    options = fetching.FetchOptions(max_size=max_size, read_timeout=timeout)
    with ctx.log.step(f"fetch {source}"):
        if source.endswith((".yaml", ".yml")) and Path(source).is_file():
            from rebuild.recipe import load_recipe

            fetched = fetching.fetch_recipe(load_recipe(Path(source)), sha256=sha, lock=lock, mirrors=pairs,
                                            options=options, log=ctx.log)
        else:
            name = Path(urlparse(source).path).name
            if not name:
                raise UsageError(f"{source}: neither a recipe file nor a URL naming a file")
            fetched = fetching.fetch_urls(fetching.with_mirrors([source], pairs), filename=name, sha256=sha,
                                          allow_unpinned=lock, options=options, log=ctx.log)
            if not sha:
                ctx.log.warn(f"TRUST ON FIRST USE: {name} has sha256 {fetched.sha256}; pin it with --sha256")
    ctx.log.info(f"    {'cached' if fetched.cached else 'verified'}: sha256 {fetched.sha256}, {fetched.size} bytes")
    path = fetched.path
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / path.name
        tmp = dest / f".{path.name}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        path = target
    click.echo(path)


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--repo", required=True, type=click.Path(path_type=Path), help="The repository folder (made if absent).")
@click.option("--sign-key", help="GnuPG key ID or user ID to sign the RPMs and SHA256SUMS with.")
@click.option("--gpg-home", type=click.Path(path_type=Path), help="GnuPG home holding the key (default: gpg's).")
@click.option("--json", "as_json", is_flag=True, help="Print the repository's index as JSON.")
@pass_ctx
def publish(ctx: Context, results: tuple[Path, ...], repo: Path, sign_key: str | None, gpg_home: Path | None,
            as_json: bool) -> None:
    """Publish RESULT directories into a signed repository with createrepo_c metadata, atomically."""
    import os

    from rebuild.publish import publish as run_publish, step_summary

    result = run_publish(list(results), repo, sign_key=sign_key, gpg_home=gpg_home, log=ctx.log)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a") as fh:
            fh.write(step_summary(result))
    if as_json:
        click.echo(json.dumps(list(result.packages), indent=2))
        return
    ctx.log.info(f"{result.repo}: {len(result.added)} added, {result.kept} already there")
    for entry in result.added:
        click.echo(f"{entry['sha256']}  {result.repo / entry['file']}")


@cli.command()
@click.argument("result_dir", type=click.Path(path_type=Path))
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), help="Default: the recipe in manifest.json.")
@click.option("--target", "target_name", help="Default: the target the result was built on.")
@pass_ctx
def verify(ctx: Context, result_dir: Path, recipe_path: Path | None, target_name: str | None) -> None:
    """Install RESULT_DIR's RPMs in a fresh container and run the recipe's checks; exit 1 if any fails."""
    from rebuild.verify import failure, verify_result

    results = verify_result(result_dir, ctx.engine(), ctx.log, recipe_path=recipe_path, target_name=target_name)
    for r in results:
        click.echo(f"{'ok    ' if r.passed else 'FAILED'}  {r.name}")
    problem = failure(results)
    if problem is not None:
        raise problem


@cli.command()
@click.argument("recipes", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["github", "gitlab", "json"]), default="json", show_default=True)
@click.option("--target", "target_name", help="Build every recipe on this target.")
def plan(recipes: tuple[Path, ...], fmt: str, target_name: str | None) -> None:
    """Print the CI build matrix: one entry per recipe and target (all of specs/ when none is given)."""
    from rebuild.plan import default_recipes, plan as make_plan, render

    click.echo(render(make_plan(list(recipes) or default_recipes(), target_name), fmt))


@cli.command("check-deps")
@click.option("--manifest", "manifest_path", required=True, type=click.Path(path_type=Path),
              help="Floors manifest (YAML: floors: {name: \"[epoch:]version[-release]\"}).")
@click.option("--image", help="Query this image's rpmdb (one container, one rpm -qa).")
@click.option("--target", "target_name", help="Query the pinned image of this target.")
@click.option("--host", is_flag=True, help="Query this machine's rpmdb.")
@click.option("--installed", type=click.Path(path_type=Path),
              help="A saved list: rpm -qa --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE}\\n'.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of the table.")
@pass_ctx
def check_deps(ctx: Context, manifest_path: Path, image: str | None, target_name: str | None, host: bool,
               installed: Path | None, as_json: bool) -> None:
    """Check dependency floors; exit 0 all met, 1 some missing or too old."""
    from rebuild import deps

    chosen = [flag for flag, value in (("--image", image), ("--target", target_name), ("--host", host),
                                       ("--installed", installed)) if value]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --image, --target, --host, --installed")
    if installed is not None:
        floors, versions = deps.load_floors(manifest_path), deps.installed_from_file(installed)
    elif host:
        floors, versions = deps.load_floors(manifest_path), deps.installed_from_host()
    else:
        engine = ctx.engine()
        if target_name:
            from rebuild.image import check_image
            from rebuild.targets import load_target

            target = load_target(target_name)
            floors, versions = deps.load_and_query(manifest_path, engine, lambda: check_image(target, engine), target.wrap)
        else:
            floors, versions = deps.load_and_query(manifest_path, engine, lambda: image)
    results = deps.check(floors, versions)
    click.echo(deps.results_json(results) if as_json else deps.format_table(results))
    if any(r.status != deps.OK for r in results):
        sys.exit(1)


@cli.command("audit-mc")
@click.argument("mc_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def audit_mc(mc_file: Path, as_json: bool) -> None:
    """Audit a sendmail.mc for open-relay and STARTTLS/AUTH mistakes; exit 1 on errors."""
    from rebuild.mcaudit import ERROR, audit_file, findings_json, format_findings

    findings = audit_file(mc_file)
    click.echo(findings_json(findings) if as_json else format_findings(findings, str(mc_file)))
    if any(f.severity == ERROR for f in findings):
        sys.exit(1)


@cli.command("probe-smtp")
@click.argument("server")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Check the certificate against these CAs.")
@click.option("--relay-test", nargs=2, metavar="FROM TO", help="Try an unauthenticated relay (MAIL/RCPT only, never DATA).")
@click.option("--source", help="Connect from this local address (e.g. 127.0.0.2: mail from 127.0.0.1 always relays).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True, help="Seconds per step.")
@click.option("--ehlo", "ehlo_name", default="rebuild-probe.localdomain", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def probe_smtp(server: str, ca_file: str | None, relay_test: tuple[str, str] | None, source: str | None,
               timeout: float, ehlo_name: str, as_json: bool) -> None:
    """Probe SERVER (HOST[:PORT]): banner, EHLO, STARTTLS, certificate, AUTH before/after TLS, relaying."""
    from rebuild.smtpprobe import format_report, parse_target, probe, report_json

    host, port = parse_target(server)
    report = probe(host, port, timeout=timeout, ehlo_name=ehlo_name, ca_file=ca_file,
                   relay=tuple(relay_test) if relay_test else None, source=source)
    click.echo(report_json(report) if as_json else format_report(report))
    if report.failed:
        sys.exit(1)


@cli.command()
@click.argument("a")
@click.argument("b")
def vercmp(a: str, b: str) -> None:
    """Compare two [epoch:]version[-release] strings as rpm does; exit 0 (==), 11 (>), 12 (<)."""
    from rebuild.evr import compare

    result = compare(a, b)
    click.echo(f"{a} {'<' if result < 0 else '>' if result > 0 else '=='} {b}")
    sys.exit({0: 0, 1: 11, -1: 12}[result])


def _pairs(values: tuple[str, ...], flag: str) -> tuple[tuple[str, str], ...]:
    import re

    out = []
    for value in values:
        name, sep, body = value.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or "\n" in body:
            raise click.UsageError(f"{flag} {value!r}: expected NAME=VALUE with a macro name")
        out.append((name, body))
    return tuple(out)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: catch every expected error once, print one line, exit with its code."""
    try:
        _main(argv)
    finally:
        # The work is done and cleaned up. Python resets Ctrl-C to its default while it shuts
        # down, so one arriving now would kill the process by signal instead of the exit code
        # already chosen: ignore it from here on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Keep the interpreter's last collections from walking every object of every imported
        # module (about 40 ms of a check-deps run). Finalizers and atexit still run.
        gc.freeze()


def _main(argv: list[str] | None) -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="rebuild", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("rebuild: interrupted; containers and partial results were removed", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RebuildError as exc:
        print(f"rebuild: error: {exc.message}", file=sys.stderr)
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
