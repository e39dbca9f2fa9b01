"""Commands on build roots: image, check-deps."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, complete_targets, pass_ctx
from rebuild.config.target import load_target
from rebuild.errors import UsageError
from rebuild.pipeline import floors as deps
from rebuild.roots.buildroot import plan_root, read_trees
from rebuild.roots.images import make_image, tree_locations
from rebuild.roots.lock import lock_path
from rebuild.roots.pins import image_dir, pinned
from rebuild.roots.registry import pull_image, push_image


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--force", is_flag=True, help="Make the root again even when a cached one matches.")
@click.option("--mirror", help="rpmtree targets: the release's RPM tree (URL or folder; RedHat/RPMS layout, hdlist,"
                               " repodata or a flat folder).")
@click.option("--updates", help="rpmtree targets: the updates tree, preferred where newer.")
@click.option("--locked", "locked", is_flag=False, flag_value="", default=None, metavar="[LOCK]",
              help="Make the root from a lock (default: the one the last make wrote): no solving, every digest"
                   " checked; --mirror/--updates then say where the locked files are.")
@click.option("--dry-run", is_flag=True, help="Solve and print what would be installed and why; make nothing.")
@click.option("--why", "why", metavar="NAME", help="With --dry-run: the chain of requirements that brings NAME in.")
@click.option("--push", "push", metavar="REPOSITORY[:TAG]",
              help="Then push the image there and pin its digest (printed as REPOSITORY@sha256:...).")
@click.option("--pull", "pull", metavar="REPOSITORY@sha256:DIGEST",
              help="Take the image from a registry by digest instead of making it.")
@pass_ctx
def image(ctx: Context, target: str, force: bool, mirror: str | None, updates: str | None, locked: str | None,
          dry_run: bool, why: str | None, push: str | None, pull: str | None) -> None:
    """Make the image of TARGET (cached; later calls reuse it) and pin its ID and content identity;
    or pull it by digest (--pull, or image.registry in the target); --push shares it."""

    loaded = load_target(target, ctx.settings.home)
    if dry_run or why:
        _dry_run(ctx, loaded, mirror, updates, why)
        return
    if pull:
        if force or mirror or updates or locked is not None or push:
            raise click.UsageError("--pull takes the image as it is: no --force, --mirror, --updates, --locked or --push")
        pin = pull_image(loaded, ctx.engine(), pull, ctx.log, ctx.settings.cache)
        click.echo(f"{pin.tag} {pin.image_id}")
        return
    lock = None
    if locked is not None:
        lock = Path(locked) if locked else lock_path(image_dir(loaded, ctx.settings.cache))
    engine = ctx.engine()
    pin = make_image(loaded, engine, ctx.log, force=force, mirror=mirror, updates=updates,
                     cache=ctx.settings.cache, locked=lock)
    click.echo(f"{pin.tag} {pin.image_id}")
    if push:
        click.echo(push_image(loaded, engine, push, ctx.log, ctx.settings.cache).registry)


def _dry_run(ctx: Context, target, mirror: str | None, updates: str | None, why: str | None) -> None:
    if target.image.method != "rpmtree":
        raise UsageError(f"target {target.name} is made with debootstrap; --dry-run solves RPM-tree roots")
    mirror, updates = tree_locations(target, mirror, updates)
    if not mirror:
        raise UsageError(f"target {target.name}: --dry-run needs --mirror URL_OR_DIR")
    solution = plan_root(target, read_trees(mirror, updates, ctx.settings.cache, ctx.log), ctx.log)
    if why:
        click.echo("\n".join(solution.explain(why)))
        return
    for package in solution.install:
        requirer, reason = solution.why.get(package.nevra, (None, ""))
        click.echo(f"{package.nevra:<50} {package.origin:<8} " + (f"<- {requirer} ({reason})" if requirer else reason))


@cli.command("check-deps")
@click.option("--manifest", "manifest_path", required=True, type=click.Path(path_type=Path),
              help="Floors manifest (YAML: floors: {name: \"[epoch:]version[-release]\"}).")
@click.option("--image", help="Query this image's rpmdb (one container, one rpm -qa).")
@click.option("--target", "target_name", shell_complete=complete_targets, help="Query the pinned image of this target.")
@click.option("--host", is_flag=True, help="Query this machine's rpmdb.")
@click.option("--installed", type=click.Path(path_type=Path),
              help="A saved list: rpm -qa --qf '%{NAME} %{EPOCH} %{VERSION} %{RELEASE}\\n'.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of the table.")
@pass_ctx
def check_deps(ctx: Context, manifest_path: Path, image: str | None, target_name: str | None, host: bool,
               installed: Path | None, as_json: bool) -> None:
    """Check dependency floors; exit 0 all met, 1 some missing or too old."""

    chosen = [flag for flag, value in (("--image", image), ("--target", target_name), ("--host", host),
                                       ("--installed", installed)) if value]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --image, --target, --host, --installed")
    floors = deps.load_floors(manifest_path)  # the user's manifest's own error comes first
    if installed is not None:
        versions = deps.installed_from_file(installed)
    elif host:
        versions = deps.installed_from_host()
    elif target_name:  # an image never changes: its installed list is read once per content identity, cached
        target = load_target(target_name, ctx.settings.home)
        versions = deps.installed_in_image(target.tag, ctx.engine, ctx.settings.cache, target.wrap,
                                           expected_id=pinned(target, ctx.settings.cache).image_id)
    else:
        versions = deps.installed_in_image(image, ctx.engine, ctx.settings.cache)
    results = deps.check(floors, versions)
    click.echo(deps.results_json(results) if as_json else deps.format_table(results))
    if any(r.status != deps.OK for r in results):
        sys.exit(1)
