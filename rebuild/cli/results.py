"""Commands on result folders: publish, verify."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rebuild.cli.main import Context, cli, pass_ctx
from rebuild.pipeline.checks import failure, verify_result
from rebuild.pipeline.publish import publish as run_publish
from rebuild.pipeline.publish import step_summary


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--repo", required=True, type=click.Path(path_type=Path), help="The repository folder (made if absent).")
@click.option("--sign-key", help="GnuPG key ID or user ID to sign the RPMs and SHA256SUMS with.")
@click.option("--gpg-home", type=click.Path(path_type=Path), help="GnuPG home holding the key (default: gpg's).")
@click.option("--adopt", is_flag=True, help="Publish into an existing non-empty folder that is not yet a repository.")
@click.option("--json", "as_json", is_flag=True, help="Print the repository's index as JSON.")
@pass_ctx
def publish(ctx: Context, results: tuple[Path, ...], repo: Path, sign_key: str | None, gpg_home: Path | None,
            adopt: bool, as_json: bool) -> None:
    """Publish RESULT folders into a signed repository with createrepo_c metadata, atomically."""

    result = run_publish(list(results), repo, sign_key=sign_key, gpg_home=gpg_home, log=ctx.log, adopt=adopt)
    summary_file = ctx.settings.step_summary
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

    results = verify_result(result_dir, ctx.engine(), ctx.log, recipe_path=recipe_path, target_name=target_name,
                            cache=ctx.settings.cache)
    for r in results:
        click.echo(f"{'ok    ' if r.passed else 'FAILED'}  {r.name}")
    problem = failure(results)
    if problem is not None:
        raise problem
