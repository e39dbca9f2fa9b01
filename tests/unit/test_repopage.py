"""The repository's pages escape whatever came from a package, recipe or manifest."""

from __future__ import annotations

import json

from rebuild.pipeline.repopage import write_pages

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_values_from_packages_and_manifests_show_as_text(tmp_path):
    (tmp_path / "manifests").mkdir()
    manifest = {"recipe": {"name": HOSTILE}, "target": {"name": "rh73", "image_id": "sha256:" + "a" * 64},
                "finished": "2026-12-03T09:00:00+00:00", "inputs": {"srpm": {"file": HOSTILE, "sha256": "b" * 64}},
                "spec": {"edits": {"macros": {"errata": "73"}}, "release_before": "1.80", "release_after": "1.73",
                         "changes": [HOSTILE]},
                "floors": {"results": [{"name": "openssl-devel", "required": "0.9.6b-32.7", "installed": "0.9.6b-33",
                                        "status": "ok"}]},
                "checks": [{"name": HOSTILE, "passed": True}]}
    (tmp_path / "manifests" / "hello-1.0-1.73.json").write_text(json.dumps(manifest))
    entry = {"nevra": "hello-1.0-1.73.x86_64", "file": "x86_64/hello-1.0-1.73.x86_64.rpm", "arch": "x86_64",
             "size": 1234, "sha256": "c" * 64, "signed_with": None, "summary": HOSTILE,
             "manifest": "manifests/hello-1.0-1.73.json", "build_log": "logs/hello-1.0-1.73/build.log"}
    evil = {**entry, "nevra": HOSTILE, "manifest": "../../etc/passwd", "file": 'x86_64/"><script>x</script>.rpm'}
    write_pages(tmp_path, [entry, evil])
    for page in [tmp_path / "index.html", *(tmp_path / "builds").glob("*.html")]:
        html = page.read_text()
        assert "<script" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", ""), page
        assert "&lt;script&gt;" in html, page
    index = (tmp_path / "index.html").read_text()
    assert "errata → 73 (Release 1.80 → 1.73)" in index and "1 of 1 met" in index
    assert 'href="builds/hello-1.0-1.73.html"' in index and 'href="x86_64/hello-1.0-1.73.x86_64.rpm"' in index
    assert {p.name for p in (tmp_path / "builds").iterdir()} == {"hello-1.0-1.73.html", "unknown.html"}
    build = (tmp_path / "builds" / "hello-1.0-1.73.html").read_text()
    assert 'href="../logs/hello-1.0-1.73/build.log"' in build and "0.9.6b-32.7" in build
