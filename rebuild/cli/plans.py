"""Commands that plan builds without building: plan (the CI matrix, or a chain's waves), and floors suggest
(a floors manifest from a result, to check other machines with)."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, pass_ctx
from rebuild.config.newrecipe import implied_recipe, is_srpm
from rebuild.config.recipe import load_recipe
from rebuild.config.target import load_target
from rebuild.errors import UsageError
from rebuild.evidence.floors import suggest
from rebuild.files import atomic_write
from rebuild.pipeline.backportplan import plan_backport
from rebuild.pipeline.chain import read_members, waves
from rebuild.pipeline.chainplan import chain_entries, render_chain
from rebuild.pipeline.k8splan import k8s_job
from rebuild.pipeline.plan import default_recipes, render
from rebuild.pipeline.plan import plan as make_plan
from rebuild.roots.pins import read_pin


@cli.command()
@click.argument("recipes", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["github", "gitlab", "json", "shell", "k8s"]), default="json",
              show_default=True, help="shell: one `rebuild build` line per entry (per wave with --chain), for GNU"
                                      " parallel or xargs (with --chain: run the lines in order).")
@click.option("--target", "target_name", help="Build every recipe on this target (needed for SRPMs).")
@click.option("--chain", is_flag=True, help="Order RECIPES (or SRPMs) into waves, as `build --chain` builds them.")
@click.option("--break", "breaks", multiple=True, metavar="NAME", help="With --chain: NAME goes first.")
@click.option("--gitlab-executor", type=click.Choice(["docker", "shell"]), default="docker", show_default=True,
              help="--format gitlab: jobs in debian:12 with a docker:dind service, or on a shell runner whose host"
                   " has Docker and rebuild's tools.")
@click.option("--k8s-runner", metavar="REF@sha256:D",
              help="--format k8s: the image (by digest) holding rebuild and this project folder at /project.")
@click.option("--k8s-engine", metavar="ssh://USER@IP[:PORT]",
              help="--format k8s: the build host whose engine the pods drive (the only egress they get).")
@click.option("--backport", "backport", metavar="SRPM",
              help="Which SRPMs of --from must be rebuilt before SRPM builds on --target (exit 1 if some"
                   " BuildRequires no SRPM makes).")
@click.option("--from", "sources", type=click.Path(path_type=Path), metavar="DIR",
              help="With --backport: a folder of the newer release's SRPMs.")
@pass_ctx
def plan(ctx: Context, recipes: tuple[str, ...], fmt: str, target_name: str | None, chain: bool,
         breaks: tuple[str, ...], gitlab_executor: str, k8s_runner: str | None, k8s_engine: str | None,
         backport: str | None, sources: Path | None) -> None:
    """Print the CI build matrix: one entry per recipe and target (all of specs/ when none is given).

    With --chain: the waves, read from the SRPMs with the target's rpm (its image is made or pulled first);
    the GitHub format is then a whole workflow, the GitLab one a child pipeline with a stage per wave."""

    home = ctx.settings.home
    if backport is not None or sources is not None:
        _backport(ctx, backport, sources, target_name, recipes, fmt)
        return
    if breaks and not chain:
        raise click.UsageError("--break goes with --chain")
    if fmt == "k8s":
        if chain:
            raise click.UsageError("--format k8s plans independent builds; build a chain with `build --chain`")
        if not k8s_runner or not k8s_engine:
            raise click.UsageError("--format k8s needs --k8s-runner REF@sha256:... and --k8s-engine ssh://USER@IP")
        entries = make_plan([Path(r) for r in recipes] or default_recipes(home), target_name, home)
        click.echo(k8s_job(entries, {t: _registry_ref(ctx, t) for t in {e["target"] for e in entries}},
                           runner=k8s_runner, engine=k8s_engine), nl=False)
        return
    if not chain:
        srpms = [r for r in recipes if is_srpm(r)]
        if srpms:
            raise click.UsageError(f"{srpms[0]}: plan takes recipes; an SRPM goes with --chain (or write a recipe"
                                   " with `rebuild init`)")
        click.echo(render(make_plan([Path(r) for r in recipes] or default_recipes(home), target_name, home), fmt,
                          gitlab_executor))
        return
    with tempfile.TemporaryDirectory(prefix="rebuild-plan-") as scratch:
        loaded, shown = [], {}
        for ref in recipes or [str(p) for p in default_recipes(home)]:
            if is_srpm(ref):
                if not target_name:
                    raise click.UsageError(f"{ref}: an SRPM needs --target TARGET")
                recipe, _ = implied_recipe(ref, target_name, (), None, None, Path(scratch))
            else:
                recipe = load_recipe(Path(ref))
            shown[recipe.name] = ref
            loaded.append(recipe)
        pairs = [(recipe, load_target(target_name or recipe.target, home)) for recipe in loaded]
        members = read_members(pairs, ctx.engine(), ctx.log, ctx.settings)
        order, graph = waves(members, breaks)
        click.echo(render_chain(chain_entries(order, graph, shown, pairs[0][1].name), fmt,
                                executor=gitlab_executor))


def _registry_ref(ctx: Context, name: str) -> str:
    """The target's image by digest in a registry (its pin's, or its definition's image.registry)."""
    target = load_target(name, ctx.settings.home)
    pin = read_pin(target, ctx.settings.cache)
    ref = (pin.registry if pin else None) or target.image.registry
    if not ref:
        raise UsageError(f"target {name}: its image is in no registry, and a cluster pulls by digest; run"
                         f" `rebuild image {name} --push REPOSITORY` first")
    return ref


def _backport(ctx: Context, srpm: str | None, sources: Path | None, target_name: str | None,
              recipes: tuple[str, ...], fmt: str) -> None:
    if not srpm or sources is None or not target_name:
        raise click.UsageError("--backport SRPM goes with --from DIR and --target TARGET")
    if recipes:
        raise click.UsageError("--backport plans one SRPM; give no other recipes")
    if fmt not in ("json", "shell"):
        raise click.UsageError("--backport prints json or shell; give its SRPMs to `plan --chain` for a pipeline")
    target = load_target(target_name, ctx.settings.home)
    found = plan_backport(srpm, sources, target, ctx.engine(), ctx.log, ctx.settings)
    ctx.log.info(found.text(target.name))
    if fmt == "json":
        click.echo(json.dumps(found.record(), indent=2))
    else:
        click.echo("rebuild build --chain " + " ".join(shlex.quote(str(p)) for w in found.waves for p in w)
                   + f" --target {shlex.quote(target.name)}")
    if found.unresolved:
        sys.exit(1)


@cli.group()
def floors() -> None:
    """Floors manifests: the minimum versions a build root (or a machine) must have."""


@floors.command("suggest")
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--image", help="Ask this image instead of the result's build root.")
@click.option("--output", type=click.Path(path_type=Path), help="Write the manifest here (default: print it).")
@pass_ctx
def floors_suggest(ctx: Context, result: Path, image: str | None, output: Path | None) -> None:
    """Print a floors manifest from RESULT's build root: the version it had of each BuildRequires and of each
    runtime Requires of the RPMs, for `rebuild check-deps --manifest` on other machines."""

    text = suggest(result, ctx.engine(), image=image)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text, mode=0o644)
        ctx.log.info(f"floors manifest written to {output}")
