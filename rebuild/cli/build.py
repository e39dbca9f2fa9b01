"""Commands of the build pipeline: build, demo, fetch, init, key, patch, targets, vercmp."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, complete_recipes, complete_targets, pass_ctx
from rebuild.config.newrecipe import IMPLIED, implied_recipe, init_recipe, is_srpm, source_ref
from rebuild.config.recipe import MACRO_NAME, SpecEdits, check_release_suffix, load_recipe
from rebuild.config.target import SHIPPED, load_target, target_sources
from rebuild.errors import BuildFailed, CheckFailed, EnvironmentProblem, UsageError
from rebuild.evidence.reproduce import check_reproducible
from rebuild.files import atomic_copy, sha256_file
from rebuild.hostcmd import run
from rebuild.pipeline import fetch as fetching
from rebuild.pipeline.batch import NotBuilt, build_many, summary_table
from rebuild.pipeline.chain import ChainPlan, build_chain, read_members, results_repository, waves, with_repository
from rebuild.pipeline.inputs import BuildOptions, BuildRequest, resolve
from rebuild.pipeline.spec import patch_file
from rebuild.pipeline.speccheck import check_in_container
from rebuild.roots.images import make_image
from rebuild.settings import parse_mirrors
from rebuild.systems.download import FetchOptions
from rebuild.systems.evr import compare
from rebuild.systems.rpmfile import payload
from rebuild.systems.store import Cache, fetch_urls
from rebuild.systems.urls import file_name, redact, with_mirrors


@cli.command()
@click.argument("recipes", nargs=-1, required=True, shell_complete=complete_recipes)
@click.option("--target", "target_name", shell_complete=complete_targets,
              help="Build on this target instead of the recipe's (needed for a bare SRPM).")
@click.option("--out", "out_dir", default="artifacts", show_default=True, type=click.Path(path_type=Path),
              help="Results go to OUT/<name>-<version>-<release>/.")
@click.option("--skip-deps-check", is_flag=True, help="Build even when the floors are not met (recorded).")
@click.option("--force", is_flag=True, help="Build even when an intact result with the same inputs exists.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Builds at once [default: the number of cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="A bare SRPM: redefine this macro.")
@click.option("--floors", "floors", type=click.Path(path_type=Path), help="A bare SRPM: check these floors.")
@click.option("--sha256", "sha", help="A bare SRPM given by URL: its pinned sha256.")
@click.option("--check-reproducible", is_flag=True,
              help="Build again with another host, time zone, path and time; compare the packages (exit 1 if they differ).")
@click.option("--no-source-date-epoch", "no_sde", is_flag=True,
              help="rpm >= 4.14: keep the real build time and host instead of the %changelog's date.")
@click.option("--chain", is_flag=True,
              help="The recipes need each other's RPMs: build them in waves, each wave's RPMs joining the next"
                   " waves' trees.")
@click.option("--break", "breaks", multiple=True, metavar="NAME",
              help="With --chain: build NAME first, against the target's own packages (to break a cycle).")
@click.option("--with-rpms", "with_rpms", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Solve build roots also from the RPMs of the results in DIR (an earlier wave's artifacts).")
@pass_ctx
def build(ctx: Context, recipes: tuple[str, ...], target_name: str | None, out_dir: Path,
          skip_deps_check: bool, force: bool, jobs: int | None, as_json: bool, sets: tuple[str, ...],
          floors: Path | None, sha: str | None, check_reproducible: bool, no_sde: bool, chain: bool,
          breaks: tuple[str, ...], with_rpms: tuple[Path, ...]) -> None:
    """Build each RECIPE (specs/<name>.yaml), or an SRPM (a path or URL, with --target), in a fresh container.

    Unchanged inputs reuse the stored result ("up to date"). Several recipes build in
    parallel; a summary table follows, and the exit code is 10 if any failed. A bare SRPM
    builds through the recipe it implies (recorded in manifest.json):
    `rebuild build foo.src.rpm --target rh73 --set errata=73`. With --chain, recipes whose
    BuildRequires another's RPMs meet build after it, in waves (exit 2 on a cycle).
    """

    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise click.UsageError("--sha256 takes 64 hex digits")
    if breaks and not chain:
        raise click.UsageError("--break goes with --chain")
    if chain and check_reproducible:
        raise click.UsageError("--check-reproducible checks one build at a time: check the chain's members after it"
                               " has built, each with --with-rpms OUT")
    loaded = []
    for ref in recipes:
        if is_srpm(ref):
            if not target_name:
                raise click.UsageError(f"{ref}: a bare SRPM needs --target TARGET")
            recipe, _ = implied_recipe(ref, target_name, _pairs(sets, "--set"), floors, sha.lower() if sha else None,
                                       Path(out_dir) / IMPLIED)
            loaded.append(recipe)
        else:
            if sets or floors or sha:
                raise click.UsageError("--set, --floors and --sha256 go with a bare SRPM, not a recipe")
            loaded.append(load_recipe(Path(ref)))
    pairs = [(recipe, load_target(target_name or recipe.target, ctx.settings.home)) for recipe in loaded]
    if with_rpms:
        repository, digest = results_repository(list(with_rpms), out_dir)
        pairs = [(recipe, with_repository(target, repository, digest)) for recipe, target in pairs]
    echo = (lambda chunk: sys.stderr.buffer.write(chunk) and sys.stderr.flush()) if ctx.verbose else None
    request = BuildRequest(BuildOptions(out_dir, skip_deps_check=skip_deps_check, force=force, source_date_epoch=not no_sde),
                           ctx.settings, parallel=jobs or os.cpu_count() or 1, echo=echo)
    if chain:
        members = read_members(pairs, ctx.engine(), ctx.log, ctx.settings)
        order, graph = waves(members, breaks)
        for number, wave in enumerate(order, 1):
            ctx.log.info(f"wave {number}: " + ", ".join(
                m.name + "".join(f" (needs {e.provider}: {e.capability})" for e in graph if e.needer == m.name)
                for m in wave))
        items = build_chain(ChainPlan(pairs[0][1], order, graph), ctx.engine(), ctx.log, request)
    else:
        items = build_many(pairs, ctx.engine(), ctx.log, request)
    done = [item.result for item in items if item.result is not None]
    reports = _check_reproducible(ctx, items, pairs, request) if check_reproducible else {}
    if as_json:
        click.echo(json.dumps([{"recipe": str(i.recipe.path), "ok": i.result is not None,
                                "directory": str(i.result.directory) if i.result else None,
                                "cached": i.result.cached if i.result else None,
                                "reproducibility": reports[i.recipe.name].record() if i.recipe.name in reports else None,
                                "error": getattr(i.error, "message", None),
                                "outputs": [o.__dict__ for o in i.result.outputs] if i.result else []}
                               for i in items], indent=2))
    else:
        for result in done:
            for output in result.outputs:
                click.echo(result.directory / output.file)
            click.echo(result.directory / "manifest.json")
    if len(items) > 1:
        ctx.log.info(summary_table(items))
    failed = [item for item in items if item.result is None]
    if len(items) == 1 and failed:
        raise failed[0].error
    if failed:
        skipped = [i.recipe.name for i in failed if isinstance(i.error, NotBuilt)]
        broke = [i.recipe.name for i in failed if not isinstance(i.error, NotBuilt)]
        raise BuildFailed(f"{len(broke)} of {len(items)} builds failed: {', '.join(broke)}"
                          + (f"; not built, as they need what failed: {', '.join(skipped)}" if skipped else ""))
    differ = sorted(name for name, report in reports.items() if not report.ok)
    if differ:
        raise CheckFailed(f"not reproducible: {', '.join(differ)} (the differences are in each manifest.json)")


def _check_reproducible(ctx: Context, items, pairs, request: BuildRequest) -> dict:
    """Each built recipe built a second time and compared; the verdict printed and returned by recipe name."""

    targets = {recipe.name: target for recipe, target in pairs}
    reports = {}
    for item in items:
        if item.result is None:
            continue
        inputs = resolve(item.recipe, targets[item.recipe.name], request.options, request.settings, ctx.log)
        report = check_reproducible(item.result, inputs, ctx.engine(), ctx.log)
        reports[item.recipe.name] = report
        ctx.log.info(f"{item.recipe.name}: {report.verdict} ({report.packages} packages compared): {report.note}")
        if report.rows:
            ctx.log.info(report.table())
    return reports


@cli.command()
@click.argument("recipe", shell_complete=complete_recipes)
@click.option("--target", "target_name", shell_complete=complete_targets, help="Default: the recipe's target.")
@click.option("--skip-deps-check", is_flag=True, help="As the build will be run.")
@click.option("--no-source-date-epoch", "no_sde", is_flag=True, help="As the build will be run.")
@pass_ctx
def key(ctx: Context, recipe: str, target_name: str | None, skip_deps_check: bool, no_sde: bool) -> None:
    """Print the build key RECIPE builds under on its target's pinned image (fetching the SRPM if it is not
    cached): a CI cache key that changes exactly when the result would."""

    loaded = load_recipe(Path(recipe))
    target = load_target(target_name or loaded.target, ctx.settings.home)
    options = BuildOptions(Path("."), skip_deps_check=skip_deps_check, source_date_epoch=not no_sde)
    inputs = resolve(loaded, target, options, ctx.settings, ctx.log)
    if inputs.pin is None:
        raise EnvironmentProblem(f"target {target.name}: no image is pinned; run `rebuild image {target.name}`"
                                 " (or --pull REF@sha256:...) first")
    build_key = inputs.key
    click.echo(build_key)


@cli.command()
@click.argument("srpm")
@click.option("--target", "target_name", default="rh73", show_default=True, help="The target the recipe builds on.")
@click.option("--output", type=click.Path(path_type=Path), help="Default: specs/<name>.yaml.")
@click.option("--sha256", "sha", help="The SRPM's sha256, when known (else pinned as downloaded).")
@pass_ctx
def init(ctx: Context, srpm: str, target_name: str, output: Path | None, sha: str | None) -> None:
    """Write specs/<name>.yaml for SRPM (a path or URL): sha256 pinned, URLs, target, and the spec's own
    %define/%global macros as commented candidates for spec.macros."""

    load_target(target_name, ctx.settings.home)
    ref = source_ref(srpm)
    if ref.local is not None:
        path, digest = ref.local, sha256_file(ref.local)
    else:
        fetched = fetch_urls([ref.url], filename=ref.name, sha256=sha.lower() if sha else None, allow_unpinned=True,
                             cache=Cache(ctx.settings.cache), log=ctx.log)
        path, digest = fetched.path, fetched.sha256
        if not sha:
            ctx.log.warn(f"TRUST ON FIRST USE: {ref.name} has sha256 {digest}; check it out of band")
    specs = [body for name, body in payload(path).items() if name.endswith(".spec")]
    spec_text = specs[0].decode("utf-8", errors="replace") if len(specs) == 1 else None
    written = init_recipe(srpm, target_name, output, ctx.settings.home / "specs", digest, spec_text)
    click.echo(written)


#: the demo's example package: a C program whose spec has `%define errata 80` and `Release: 1.%{errata}`
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"


@cli.command()
@click.option("--out", "out_dir", default="artifacts", show_default=True, type=click.Path(path_type=Path),
              help="Results go to OUT/<name>-<version>-<release>/; the example's SRPM to OUT/.demo/.")
@click.pass_context
def demo(click_ctx: click.Context, out_dir: Path) -> None:
    """Offline: pack the example package (errata 80) into an SRPM with the host's rpmbuild, make the testroot
    image (cached) and build the SRPM there with errata=73 (Release 1.73)."""

    ctx: Context = click_ctx.obj
    with tempfile.TemporaryDirectory() as top:
        run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {top}", "--define", f"_sourcedir {EXAMPLE}",
             str(EXAMPLE / "hello.spec")], "packing the example SRPM", ctx.log)
        (packed,) = Path(top, "SRPMS").glob("*.src.rpm")
        (out_dir / ".demo").mkdir(parents=True, exist_ok=True)
        srpm = Path(shutil.copy2(packed, out_dir / ".demo" / packed.name))
    make_image(load_target("testroot", ctx.settings.home), ctx.engine(), ctx.log, cache=ctx.settings.cache)
    click_ctx.invoke(build, recipes=(str(srpm),), target_name="testroot", out_dir=out_dir, sets=("errata=73",))


@cli.command()
@click.argument("recipes", nargs=-1, type=click.Path(path_type=Path))
@pass_ctx
def targets(ctx: Context, recipes: tuple[Path, ...]) -> None:
    """List the targets RECIPES build on, one name a line; without RECIPES every known target with where it
    comes from (the project folder's containers/, or shipped with rebuild) and its definition file."""

    if recipes:
        for name in sorted({load_recipe(p).target for p in recipes}):
            click.echo(name)
        return
    for name, path in target_sources(ctx.settings.home).items():
        click.echo(f"{name}\t{'shipped' if path.is_relative_to(SHIPPED) else 'project'}\t{path}")


@cli.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Redefine an existing %define/%global.")
@click.option("--add", "adds", multiple=True, metavar="NAME=VALUE", help="Define a new macro at the top.")
@click.option("--release-suffix", default="", help="Append this to Release (e.g. .rb1).")
@click.option("--output", type=click.Path(path_type=Path), help="Write here instead of editing in place.")
@click.option("--check", is_flag=True, help="Have rpmspec read the result in a throwaway container of --check-target"
                                            " (a spec's %(...) runs shell code: never on this host): does it parse,"
                                            " and what do the edited macros expand to (exit 1 when it does not parse).")
@click.option("--check-target", default="testroot", show_default=True, shell_complete=complete_targets,
              help="The target whose rpm parses the spec for --check.")
@pass_ctx
def patch(ctx: Context, spec: Path, sets: tuple[str, ...], adds: tuple[str, ...], release_suffix: str,
          output: Path | None, check: bool, check_target: str) -> None:
    """Edit macro definitions in SPEC and print the unified diff.

    In place, the original is kept as SPEC.orig (an existing .orig is never overwritten).
    A definition in a comment is edited too (rpm runs it); a multi-line body becomes one line.
    """

    if not (sets or adds or release_suffix):
        raise click.UsageError("give at least one --set NAME=VALUE, --add NAME=VALUE or --release-suffix")
    problem = check_release_suffix(release_suffix)
    if problem:
        raise click.UsageError(f"--release-suffix: {problem}")
    edits = SpecEdits(macros=_pairs(sets, "--set"), add_macros=_pairs(adds, "--add"), release_suffix=release_suffix)
    checker = load_target(check_target, ctx.settings.home) if check else None  # a bad name before any edit
    result = patch_file(spec, edits, output=output)
    for note in result.notes:
        ctx.log.warn(note)
    if result.changed:
        click.echo(result.diff(), nl=False)
    else:
        ctx.log.info(f"{spec}: nothing to change")
    if check:
        parsed, lines = check_in_container(output or spec, [n for n, _ in edits.macros + edits.add_macros],
                                           checker, ctx.engine(), ctx.log)
        for line in lines:
            click.echo(line)
        if not parsed:
            raise CheckFailed(f"{output or spec}: {check_target}'s rpmspec cannot parse the result (see above)")


def _pairs(values: tuple[str, ...], flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        name, sep, body = value.partition("=")
        if not sep or not MACRO_NAME.match(name) or "\n" in body or "\r" in body:
            raise click.UsageError(f"{flag} {value!r}: expected NAME=VALUE with a macro name (or NAME() for a"
                                   " parametric one) and a one-line value")
        out.append((name, body))
    return tuple(out)


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
@click.option("--deadline", type=click.FloatRange(min=0.1), default=300.0, show_default=True,
              help="Wall-clock seconds per attempt (4 attempts per URL, resumed where the last one stopped);"
                   " a server that accepts but never answers costs about 2 minutes.")
@pass_ctx
def fetch(ctx: Context, source: str, sha: str | None, dest: Path | None, lock: bool, mirrors: tuple[str, ...],
          max_size: int, timeout: float, deadline: float) -> None:
    """Download and verify SOURCE (a recipe or a URL) into the content-addressed cache; print its path."""

    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise click.UsageError("--sha256 takes 64 hex digits")
    sha = sha.lower() if sha else None
    pairs = ctx.settings.mirrors + parse_mirrors(" ".join(mirrors))
    options = FetchOptions(max_size=max_size, read_timeout=timeout, deadline=deadline)
    cache = Cache(ctx.settings.cache)
    with ctx.log.step(f"fetch {redact(source)}"):
        if source.endswith((".yaml", ".yml")) and Path(source).is_file():
            fetched = fetching.fetch_recipe(load_recipe(Path(source)), sha256=sha, lock=lock, mirrors=pairs,
                                            options=options, log=ctx.log, cache=cache)
        else:
            name = file_name(source)
            if not name:
                raise UsageError(f"{redact(source)}: neither a recipe file nor a URL naming a file")
            fetched = fetch_urls(with_mirrors([source], pairs), filename=name, sha256=sha,
                                          allow_unpinned=lock, options=options, log=ctx.log, cache=cache)
            if not sha:
                ctx.log.warn(f"TRUST ON FIRST USE: {name} has sha256 {fetched.sha256}; pin it with --sha256")
    ctx.log.info(f"    {'cached' if fetched.cached else 'verified'}: sha256 {fetched.sha256}, {fetched.size} bytes")
    path = fetched.path
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
        atomic_copy(path, dest / path.name, mode=0o644)
        path = dest / path.name
    click.echo(path)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("a")
@click.argument("b")
def vercmp(a: str, b: str) -> None:
    """Compare two [epoch:]version[-release] strings as rpm does; exit 0 (==), 11 (>), 12 (<).

    A version that starts with - is read as a version, not an option (or put -- first)."""

    result = compare(a, b)
    click.echo(f"{a} {'<' if result < 0 else '>' if result > 0 else '=='} {b}")
    sys.exit({0: 0, 1: 11, -1: 12}[result])
