"""Commands on build roots: image, check-deps."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, pass_ctx


@cli.command()
@click.argument("target")
@click.option("--force", is_flag=True, help="Make the root again even when a cached one matches.")
@click.option("--mirror", help="rpmtree targets: the release's RPM tree (URL or folder; RedHat/RPMS layout or flat).")
@click.option("--updates", help="rpmtree targets: the updates tree, preferred where newer.")
@pass_ctx
def image(ctx: Context, target: str, force: bool, mirror: str | None, updates: str | None) -> None:
    """Make the image of TARGET (cached; later calls reuse it) and pin its ID."""
    from rebuild.config.target import load_target
    from rebuild.roots.images import make_image

    pin = make_image(load_target(target, ctx.settings.home), ctx.engine(), ctx.log, force=force, mirror=mirror,
                     updates=updates, cache=ctx.settings.cache)
    click.echo(f"{pin.tag} {pin.image_id}")


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
    from rebuild.pipeline import floors as deps

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
            from rebuild.config.target import load_target
            from rebuild.roots.pins import check_image

            target = load_target(target_name, ctx.settings.home)
            floors, versions = deps.load_and_query(manifest_path, engine,
                                                   lambda: check_image(target, engine, ctx.settings.cache), target.wrap)
        else:
            floors, versions = deps.load_and_query(manifest_path, engine, lambda: image)
    results = deps.check(floors, versions)
    click.echo(deps.results_json(results) if as_json else deps.format_table(results))
    if any(r.status != deps.OK for r in results):
        sys.exit(1)
