"""Several builds at once, each in its own container and work tree, and their summary table."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rebuild.config.recipe import Recipe
from rebuild.config.target import Target
from rebuild.errors import BuildFailed, RebuildError
from rebuild.log import Log, format_table
from rebuild.pipeline.build import BuildResult, build
from rebuild.pipeline.inputs import BuildRequest, Progress, resolve
from rebuild.systems.engine import Engine


@dataclass(frozen=True)
class BatchItem:
    recipe: Recipe
    result: BuildResult | None
    error: RebuildError | None
    duration: float


class NotBuilt(BuildFailed):
    """A build that was not started: something it needs failed first (a chain build's later wave)."""


#: the lines of a failed build's log tail printed beside its name when several build at once
FAILURE_TAIL = 8


def build_many(jobs: list[tuple[Recipe, Target]], engine: Engine, log: Log, request: BuildRequest) -> list[BatchItem]:
    """Build independent recipes, *request.parallel* at a time, each resolved (``resolve``) and built in its own
    container and work tree.

    One failure does not stop the others. Ctrl-C removes every container and re-raises.
    """
    board = log.status_board([recipe.name for recipe, _ in jobs])

    def one(recipe: Recipe, target: Target) -> BatchItem:
        child = log.child(f"[{recipe.name}] ") if len(jobs) > 1 else log
        start = time.monotonic()
        on_phase, tee = None, request.echo if len(jobs) == 1 else None
        if board is not None:
            on_phase = lambda phase: board.update(recipe.name, phase=phase)  # noqa: E731
            tee = _tee(lambda chunk: board.update(recipe.name, output=chunk), tee)
        try:
            inputs = resolve(recipe, target, request.options, request.settings, child)
            result = build(inputs, engine.for_log(child), child, Progress(echo=tee, on_phase=on_phase))
            if board is not None:
                board.update(recipe.name, phase="cached" if result.cached else "done")
            return BatchItem(recipe, result, None, time.monotonic() - start)
        except RebuildError as exc:
            if board is not None:
                board.update(recipe.name, phase=f"FAILED (exit {exc.exit_code})")
            if len(jobs) > 1:  # one build alone: main() prints the message and its tail
                child.warn(f"failed: {exc.message}" + "".join(f"\n{child.prefix}    {line}" for line in
                                                             (exc.detail or "").splitlines()[-FAILURE_TAIL:]))
            return BatchItem(recipe, None, exc, time.monotonic() - start)

    try:
        if len(jobs) == 1 or request.parallel <= 1:
            return [one(recipe, target) for recipe, target in jobs]
        return _parallel(jobs, one, engine, request.parallel)
    finally:
        if board is not None:
            board.close()


def _tee(first: Callable[[bytes], None], second: Callable[[bytes], None] | None) -> Callable[[bytes], None]:
    def both(chunk: bytes) -> None:
        first(chunk)
        if second is not None:
            second(chunk)

    return both


def _parallel(jobs, one, engine: Engine, parallel: int) -> list[BatchItem]:
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="build")
    futures = [pool.submit(one, recipe, target) for recipe, target in jobs]
    try:
        items = [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        engine.remove_all()
        pool.shutdown(wait=True, cancel_futures=True)
        engine.remove_all()
        raise
    pool.shutdown(wait=True)
    return items


def summary_table(items: list[BatchItem]) -> str:
    rows = [("RECIPE", "RESULT", "SECONDS", "HOW")]
    for item in items:
        if item.result is not None:
            rows.append((item.recipe.name, item.result.directory.name, f"{item.duration:.1f}",
                         "cached" if item.result.cached else "built"))
        elif isinstance(item.error, NotBuilt):
            rows.append((item.recipe.name, f"NOT BUILT: {item.error.message.removeprefix('not built: ')}", "-", "-"))
        else:  # named by its SRPM: two of one name (less-332-8cl, less-332-9cl) stay apart
            rows.append((item.recipe.name, f"FAILED (exit {getattr(item.error, 'exit_code', 1)}):"
                         f" {item.recipe.source.srpm.removesuffix('.src.rpm')}", f"{item.duration:.1f}", "-"))
    failed = sum(1 for i in items if i.result is None and not isinstance(i.error, NotBuilt))
    skipped = sum(1 for i in items if isinstance(i.error, NotBuilt))
    return format_table(rows, [f"{len(items)} recipes: {len(items) - failed - skipped} ok, {failed} failed"
                               + (f", {skipped} not built" if skipped else "")])
