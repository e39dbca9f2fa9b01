"""Hostile mirrors: answers that never end, broken headers and redirects, credentials in URLs, a path as the
SRPM name, and downloads interrupted long ago. Each case ends within a few seconds with one clear line."""

from __future__ import annotations

import os
import time

import pytest

from rebuild.errors import EnvironmentProblem, UsageError
from rebuild.systems.download import FetchOptions
from rebuild.systems.store import Cache, fetch_urls
from tests.conftest import copy_case, make_srpm
from tests.hostile.conftest import one_line_error, quietly, within
from tests.httpfault import FaultServer

NAME = "greeting-2.1-3.src.rpm"
PATH = f"/SRPMS/{NAME}"
HOSTILE = FetchOptions(connect_timeout=1, read_timeout=2, attempts=2, backoff=0.05, deadline=1.5)


@pytest.fixture(scope="module")
def srpm(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp("srpm")
    return make_srpm(copy_case("noarch", tmp) / "greeting.spec", tmp / "out").read_bytes()


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _get(urls, srpm, tmp_path, options=HOSTILE):
    return fetch_urls(urls, filename=NAME, sha256=sha(srpm), expected_nvr="greeting-2.1-3", options=options,
                      cache=Cache(tmp_path / "cache"))


@pytest.mark.parametrize("fault", ["trickle", "slowheaders", "continue"])
def test_answers_that_never_end_meet_the_deadline(srpm, tmp_path, fault):
    with FaultServer(files={PATH: srpm}) as server:
        server.faults[PATH] = [fault] * 4
        with within(8), pytest.raises(EnvironmentProblem, match="deadline"):
            _get([server.url + PATH], srpm, tmp_path)
    assert not list((tmp_path / "cache").rglob("*.rpm")), "nothing half-written in the cache"


@pytest.mark.parametrize("fault", ["header:Content-Length:\u00b2\u00b3", "header:Retry-After:\u0663",
                                   "redirect:http://[::1/x.rpm", "header:Content-Length:12, 99"])
def test_a_broken_first_mirror_moves_on_to_the_next(srpm, tmp_path, fault):
    with FaultServer(files={PATH: srpm, "/good" + PATH: srpm}) as server:
        server.faults[PATH] = [fault]
        with within(8):
            got = _get([server.url + PATH, server.url + "/good" + PATH], srpm, tmp_path)
    assert got.path.read_bytes() == srpm
    if "Retry-After" not in fault:  # a 200 with an odd Retry-After is still a good answer
        assert got.url.endswith("/good" + PATH)


@pytest.mark.parametrize("url", ["http://[::1/x.src.rpm", "http://host:99999/x.src.rpm", "http://a b/x.src.rpm",
                                 "gopher://x/x.src.rpm"])
def test_malformed_urls_given_are_bad_input(url, tmp_path):
    one_line_error(quietly("fetch", url, "--sha256", "0" * 64, env={"REBUILD_CACHE": str(tmp_path)}), 2)


def test_no_credential_reaches_any_output_or_file(srpm, tmp_path):
    secret = "s3cr3t-pa55"
    with FaultServer(files={PATH: srpm}) as server:
        host = server.url.removeprefix("http://")
        url = f"http://builder:{secret}@{host}{PATH}?token={secret}"
        recipe = tmp_path / "greeting.yaml"
        recipe.write_text(f"name: greeting\nsource:\n  srpm: {NAME}\n  urls: ['{url}']\ntarget: testroot\n")
        env = {"REBUILD_CACHE": str(tmp_path / "cache")}
        procs = [quietly("fetch", str(recipe), "--lock", env=env), quietly("fetch", str(recipe), env=env),
                 quietly("fetch", url, "--sha256", "0" * 64, env=env),
                 quietly("fetch", str(recipe), "--mirror", f"http://x:{secret}@nowhere=http://y", env=env)]
        server.faults[PATH] = ["404"]
        procs.append(quietly("fetch", url, "--sha256", sha(srpm) + "", "--lock", env={"REBUILD_CACHE": str(tmp_path / "c2")}))
    for proc in procs:
        assert secret not in proc.stdout + proc.stderr, proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != recipe:  # the recipe is the user's own input
            assert secret.encode() not in path.read_bytes(), path
    assert (tmp_path / "greeting.lock").is_file()


@pytest.mark.parametrize("srpm_name", ["../../x/important.src.rpm", "/etc/important.src.rpm", "a/b.src.rpm",
                                       ".hidden.src.rpm"])
def test_the_srpm_name_is_a_bare_file_name(tmp_path, srpm_name):
    victim = tmp_path / "x" / "important.src.rpm"
    victim.parent.mkdir()
    victim.write_bytes(b"keep me")
    recipe = tmp_path / "r" / "r.yaml"
    recipe.parent.mkdir()
    recipe.write_text(f"name: r\nsource:\n  srpm: '{srpm_name}'\n  urls: ['http://127.0.0.1:9/x.src.rpm']\n"
                      "target: testroot\n")
    proc = quietly("fetch", str(recipe), "--lock", env={"REBUILD_CACHE": str(tmp_path / "cache")})
    one_line_error(proc, 2)
    assert "bare file name" in proc.stderr and victim.read_bytes() == b"keep me"
    with pytest.raises(UsageError, match="bare name"):
        Cache(tmp_path / "cache").path("0" * 64, srpm_name)


def test_stale_partial_downloads_are_removed(tmp_path, srpm):
    cache = Cache(tmp_path / "cache")
    folder = cache.root / "tmp"
    folder.mkdir(parents=True)
    dead = folder / "dl-999999999-abc.part"  # a process that is gone
    old = folder / "dl-legacy.part"
    dead.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    live = folder / f"dl-{os.getpid()}-mine.part"
    live.write_bytes(b"x")
    cache.temp().unlink()
    assert not dead.exists() and not old.exists() and live.exists()


def test_a_fifo_given_as_a_file_url_is_refused(tmp_path, srpm):
    fifo = tmp_path / NAME
    os.mkfifo(fifo)
    with within(5), pytest.raises(EnvironmentProblem, match="FIFO"):
        _get([fifo.as_uri()], srpm, tmp_path)


def test_the_deadline_is_in_the_help():
    proc = quietly("fetch", "--help")
    assert "--deadline" in proc.stdout and "about 2 minutes" in " ".join(proc.stdout.split())
