"""The published repository's pages as a person sees them: the demo package and a package whose summary
holds markup, published, served over HTTP on loopback, every link followed, and the page rendered by headless
Chromium (Debian's chromium): its DOM lists each package and shows the markup as text; a screenshot is kept."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rebuild.cli.build import EXAMPLE
from tests.conftest import copy_case, make_srpm, run_cli

pytestmark = pytest.mark.docker

SUMMARY = "<script>document.title='owned'</script> a greeting"
#: where the test leaves its screenshot of the page
SCREENSHOT = Path(tempfile.gettempdir()) / "rebuild-repo-page.png"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def published(tmp_path_factory, testroot) -> Path:
    base = tmp_path_factory.mktemp("page")
    out = base / "out"
    demo = make_srpm(EXAMPLE / "hello.spec", base / "demo")
    case = copy_case("noarch", base)
    spec = case / "greeting.spec"
    spec.write_text(spec.read_text().replace("Summary: A noarch test package", f"Summary: {SUMMARY}"))
    hostile = make_srpm(spec, base / "hostile")
    for srpm, sets in ((demo, ["--set", "errata=73"]), (hostile, [])):
        proc = run_cli("build", str(srpm), "--target", "testroot", "--out", str(out), *sets)
        assert proc.returncode == 0, proc.stderr
    repo = base / "repo"
    proc = run_cli("publish", str(out / "hello-1.0-1.73"), str(out / "greeting-2.1-3"), "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    return repo


@pytest.fixture(scope="module")
def served(published):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(published)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_every_link_on_every_page_answers(served):
    index = urllib.request.urlopen(served + "index.html", timeout=10).read().decode()
    for name in ("hello-1.0-1.73.x86_64", "hello-1.0-1.73.src", "greeting-2.1-3.noarch"):
        assert name in index
    pages = [("", index)]
    pages += [(href.rpartition("/")[0] + "/", urllib.request.urlopen(served + href, timeout=10).read().decode())
              for href in sorted(set(_links(index))) if href.startswith("builds/")]
    assert len(pages) == 3
    followed = 0
    for folder, html in pages:
        for href in _links(html):
            with urllib.request.urlopen(served + os.path.normpath(folder + href), timeout=10) as answer:
                assert answer.status == 200, href
                followed += 1
    assert followed >= 20
    build = dict(pages)["builds/"]
    assert "build.log" in build and "spec.diff" in build and "SBOM" in build and "provenance" in build


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (Debian: chromium)")
def test_the_page_renders_in_a_browser_with_markup_shown_as_text(served, tmp_path):
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", served + "index.html"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>RPM repository</title>" in dom.stdout, "the script in the summary did not run"
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt; a greeting" in dom.stdout
    assert dom.stdout.count("<tr>") == 1 + 4 and "hello-1.0-1.73.x86_64" in dom.stdout, "a header and 4 packages"
    shot = subprocess.run([*browser, "--window-size=1400,900", f"--screenshot={SCREENSHOT}", served + "index.html"],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and SCREENSHOT.stat().st_size > 10_000, shot.stderr[-2000:]
    print(f"\nscreenshot of the repository page: {SCREENSHOT}", file=sys.stderr)
