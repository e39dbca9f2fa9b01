"""rebuild fetch against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.settings import parse_mirrors
from rebuild.systems.download import FetchOptions
from rebuild.systems.store import Cache, fetch_urls
from rebuild.systems.urls import redact, with_mirrors
from tests.conftest import ROOT, copy_case, make_srpm, run_cli
from tests.httpfault import FaultServer

FAST = FetchOptions(backoff=0.05, read_timeout=1.0, connect_timeout=1.0, max_retry_after=2)
NAME = "greeting-2.1-3.src.rpm"
PATH = f"/SRPMS/{NAME}"


@pytest.fixture(scope="module")
def srpm(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp("srpm")
    return make_srpm(copy_case("noarch", tmp) / "greeting.spec", tmp / "out").read_bytes()


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "cache")


@pytest.fixture
def server(srpm):
    with FaultServer(files={PATH: srpm}) as srv:
        yield srv


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def cache_files(cache: Cache) -> list[str]:
    return sorted(str(p.relative_to(cache.root)) for p in cache.root.rglob("*") if p.is_file())


def get(server, cache, srpm, urls=None, **kw):
    kw.setdefault("sha256", sha(srpm))
    return fetch_urls(urls or [server.url + PATH], filename=NAME, expected_nvr="greeting-2.1-3",
                      options=kw.pop("options", FAST), cache=cache, **kw)


def test_clean_fetch_then_cached_without_request(server, cache, srpm):
    got = get(server, cache, srpm)
    assert got.path.read_bytes() == srpm and not got.cached
    assert got.path == cache.root / "sha256" / sha(srpm) / NAME
    before = len(server.settled())
    again = get(server, cache, srpm)
    assert again.cached and again.path == got.path
    assert len(server.settled()) == before, "a pinned, cached file costs no request"


def test_404_on_first_mirror_moves_on(server, cache, srpm):
    got = get(server, cache, srpm, urls=[server.url + "/missing/" + NAME, server.url + PATH])
    assert got.url == server.url + PATH
    assert [s.status for s in server.settled()] == [404, 200]


def test_500_then_success_is_retried(server, cache, srpm):
    server.faults[PATH] = ["500", "500"]
    assert get(server, cache, srpm).path.read_bytes() == srpm
    assert [s.status for s in server.settled()] == [500, 500, 200]


def test_429_honours_retry_after(server, cache, srpm):
    server.faults[PATH] = ["429:1"]
    start = time.monotonic()
    get(server, cache, srpm)
    assert time.monotonic() - start >= 1.0
    assert [s.status for s in server.settled()] == [429, 200]


def test_cut_mid_body_resumes_with_range(server, cache, srpm):
    server.faults[PATH] = ["cut:3000"]
    got = get(server, cache, srpm)
    assert got.path.read_bytes() == srpm
    first, second = server.settled()
    assert (first.status, first.range, first.sent) == (200, None, 3000)
    assert (second.status, second.range, second.sent) == (206, "bytes=3000-", len(srpm) - 3000)


def test_server_ignoring_range_restarts_cleanly(server, cache, srpm):
    server.faults[PATH] = ["cut:3000"]
    server.ignore_range.add(PATH)
    got = get(server, cache, srpm)
    assert got.path.read_bytes() == srpm
    assert [(s.status, s.range, s.sent) for s in server.settled()] == [(200, None, 3000), (200, "bytes=3000-", len(srpm))]


def test_wrong_body_is_a_checksum_mismatch_and_nothing_is_cached(server, cache, srpm):
    server.faults[PATH] = ["wrong"]
    with pytest.raises(CheckFailed) as err:
        get(server, cache, srpm, options=FetchOptions(attempts=1))
    text = err.value.message
    assert server.url + PATH in text and sha(srpm) in text
    assert sha(srpm[:-1] + bytes([srpm[-1] ^ 0xFF])) in text
    assert cache_files(cache) == []


def test_stall_times_out_and_retries(server, cache, srpm):
    server.faults[PATH] = ["stall:3"]
    start = time.monotonic()
    got = get(server, cache, srpm)
    assert got.path.read_bytes() == srpm
    assert time.monotonic() - start < 3, "the stalled request was abandoned at the read timeout"


def test_stall_on_every_try_gives_up(server, cache, srpm):
    server.faults[PATH] = ["stall:2"] * 3
    with pytest.raises(EnvironmentProblem, match="timed out"):
        get(server, cache, srpm, options=FetchOptions(attempts=2, backoff=0.01, read_timeout=0.5))
    assert cache_files(cache) == []


def test_redirect_to_ftp_is_refused(server, cache, srpm):
    server.faults["/moved"] = ["redirect:ftp://127.0.0.1/" + NAME]
    with pytest.raises(EnvironmentProblem, match="redirect to ftp://127.0.0.1/greeting-2.1-3.src.rpm refused"):
        get(server, cache, srpm, urls=[server.url + "/moved"])


def test_redirect_to_http_is_followed(server, cache, srpm):
    server.faults["/moved"] = ["redirect:" + PATH]
    assert get(server, cache, srpm, urls=[server.url + "/moved"]).path.read_bytes() == srpm


def test_html_error_page_with_200_is_not_an_rpm(server, cache, srpm):
    server.faults[PATH] = ["html"]
    with pytest.raises(CheckFailed, match=r"not an RPM file \(looks like an HTML page\)"):
        get(server, cache, srpm)
    assert cache_files(cache) == []


def test_oversize_body_is_refused_while_streaming(server, cache, srpm):
    with pytest.raises(EnvironmentProblem, match="over the size cap of 4096 bytes"):
        get(server, cache, srpm, options=FetchOptions(max_size=4096))
    assert cache_files(cache) == []


def test_unpinned_fetch_is_refused_without_lock(server, cache, srpm):
    with pytest.raises(UsageError, match="no sha256 pin"):
        get(server, cache, srpm, sha256=None)
    assert server.settled() == []


def test_wrong_package_name_is_refused(server, cache, srpm):
    with pytest.raises(CheckFailed, match="header says greeting-2.1-3, expected other-1-1"):
        fetch_urls([server.url + PATH], filename=NAME, sha256=sha(srpm), expected_nvr="other-1-1",
                   options=FAST, cache=cache)


def test_mirror_rewrite_and_redaction():
    pairs = parse_mirrors("https://archive.example/pub=file:///srv/mirror/pub")
    urls = with_mirrors(["https://archive.example/pub/redhat/x.src.rpm", "http://other/x.src.rpm"], pairs)
    assert urls == ["file:///srv/mirror/pub/redhat/x.src.rpm", "https://archive.example/pub/redhat/x.src.rpm",
                    "http://other/x.src.rpm"]
    assert redact("https://user:secret@host:8443/x") == "https://***@host:8443/x"
    with pytest.raises(UsageError):
        parse_mirrors("nonsense")


def _recipe(tmp_path, url: str, extra: str = "") -> Path:
    """A recipe; *extra* lines go into its source section."""
    path = tmp_path / "greeting.yaml"
    path.write_text(f"name: greeting\nsource:\n  srpm: {NAME}\n  urls: ['{url}']\n{extra}target: testroot\n")
    return path


def test_cli_lock_then_verify_then_no_request(server, srpm, tmp_path):
    env = {"REBUILD_CACHE": str(tmp_path / "c")}
    recipe = _recipe(tmp_path, server.url + PATH)
    refused = run_cli("fetch", str(recipe), env=env)
    assert refused.returncode == 2 and "--lock" in refused.stderr and server.settled() == []
    locked = run_cli("fetch", str(recipe), "--lock", env=env)
    assert locked.returncode == 0, locked.stderr
    assert "TRUST ON FIRST USE" in locked.stderr and sha(srpm) in locked.stderr
    lock = json.loads((tmp_path / "greeting.lock").read_text())
    assert lock["srpms"][NAME]["sha256"] == sha(srpm)
    path = Path(locked.stdout.strip())
    assert path.read_bytes() == srpm
    requests_so_far = len(server.settled())
    again = run_cli("fetch", str(recipe), env=env)
    assert again.returncode == 0 and Path(again.stdout.strip()) == path
    assert len(server.settled()) == requests_so_far
    # a changed file upstream no longer matches the lock
    (tmp_path / "c").rename(tmp_path / "c-old")
    server.files[PATH] = srpm[:-1] + bytes([srpm[-1] ^ 1])
    changed = run_cli("fetch", str(recipe), env=env)
    assert changed.returncode == 1
    assert f"expected {sha(srpm)}" in changed.stderr


def test_cli_dest_and_url_form(server, srpm, tmp_path):
    env = {"REBUILD_CACHE": str(tmp_path / "c")}
    proc = run_cli("fetch", server.url + PATH, "--sha256", sha(srpm), "--dest", str(tmp_path / "d"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d" / NAME).read_bytes() == srpm


def test_cli_exit_codes_for_unreachable_and_bad_scheme(tmp_path, srpm):
    env = {"REBUILD_CACHE": str(tmp_path / "c")}
    proc = run_cli("-q", "fetch", "http://127.0.0.1:9/" + NAME, "--sha256", sha(srpm), env=env)
    assert proc.returncode == 3 and len(proc.stderr.splitlines()) <= 2
    proc = run_cli("fetch", "ftp://127.0.0.1/" + NAME, "--sha256", sha(srpm), env=env)
    assert proc.returncode == 2


def test_gpg_keys_require_a_signature_from_those_keys(srpm, tmp_path, cache):
    from tests.signing import make_key, sign_rpm

    good = make_key(tmp_path / "good", "Packager <good@example.invalid>")
    other = make_key(tmp_path / "other", "Stranger <other@example.invalid>")
    signed_path = tmp_path / NAME
    signed_path.write_bytes(srpm)
    sign_rpm(signed_path, good)
    signed = signed_path.read_bytes()
    with FaultServer(files={PATH: signed, "/unsigned/" + NAME: srpm}) as srv:
        got = fetch_urls([srv.url + PATH], filename=NAME, sha256=sha(signed), expected_nvr="greeting-2.1-3",
                         gpg_keys=(good.public,), options=FAST, cache=cache)
        assert got.path.read_bytes() == signed
        with pytest.raises(CheckFailed, match="signature not OK with the given keys"):
            fetch_urls([srv.url + PATH], filename=NAME, sha256=sha(signed), expected_nvr="greeting-2.1-3",
                       gpg_keys=(other.public,), options=FAST, cache=Cache(tmp_path / "c2"))
        with pytest.raises(CheckFailed, match="no signature"):
            fetch_urls([srv.url + "/unsigned/" + NAME], filename=NAME, sha256=sha(srpm),
                       expected_nvr="greeting-2.1-3", gpg_keys=(good.public,), options=FAST, cache=Cache(tmp_path / "c3"))
    assert cache_files(Cache(tmp_path / "c2")) == [] and cache_files(Cache(tmp_path / "c3")) == []


def test_unreadable_key_is_bad_input(server, srpm, tmp_path):
    (tmp_path / "key.asc").write_text("not a key\n")
    recipe = _recipe(tmp_path, server.url + PATH, f"  sha256: {sha(srpm)}\n  gpg_keys: [key.asc]\n")
    text = recipe.read_text()
    recipe.write_text(text.replace("target: testroot\n", "").replace("source:\n", "source:\n", 1) + "target: testroot\n")
    proc = run_cli("fetch", str(recipe), env={"REBUILD_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 2 and "cannot import the key" in proc.stderr, proc.stderr


def test_sigint_leaves_no_file_in_the_cache(srpm, tmp_path):
    big = srpm + b"\0" * (4 << 20)  # a slow 4 MiB body
    with FaultServer(files={PATH: big}, throttle=512 << 10) as srv:
        cache_dir = tmp_path / "c"
        proc = subprocess.Popen([sys.executable, "-m", "rebuild", "fetch", srv.url + PATH, "--sha256", sha(big)],
                                cwd=ROOT, env={**os.environ, "REBUILD_CACHE": str(cache_dir)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            parts = list((cache_dir / "srpms" / "tmp").glob("*.part")) if cache_dir.exists() else []
            if parts and parts[0].stat().st_size > 100_000:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert [p for p in cache_dir.rglob("*") if p.is_file()] == []


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (the test's own CA, trusted by nothing)."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_https_untrusted_certificate_is_one_clear_error_without_retries(srpm, tls_pair, tmp_path):
    with FaultServer(files={PATH: srpm}, tls=tls_pair) as srv:
        env = {"REBUILD_CACHE": str(tmp_path / "cache")}
        proc = run_cli("fetch", srv.url + PATH, "--sha256", sha(srpm), env=env)
        assert proc.returncode == 3, proc.stderr
        assert "TLS certificate not trusted (self-signed certificate)" in proc.stderr
        assert "REQUESTS_CA_BUNDLE" in proc.stderr and "retrying" not in proc.stderr
        assert not (tmp_path / "cache" / "srpms" / "sha256").exists()
        # trusting the test's CA is the operator's fix
        proc = run_cli("-q", "fetch", srv.url + PATH, "--sha256", sha(srpm), env={**env, "REQUESTS_CA_BUNDLE": tls_pair[0]})
        assert proc.returncode == 0, proc.stderr
        assert Path(proc.stdout.strip()).read_bytes() == srpm
