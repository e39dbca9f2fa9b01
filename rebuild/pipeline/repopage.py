"""The published repository's web pages: ``index.html`` (every package, how to install) and one page per build
(``builds/<nvr>.html``: its RPMs, target, floors, spec edit, checks and evidence), static HTML without scripts.

They are made from the same entries as ``index.json`` and the manifests published beside them, inside the
staging tree, so they are swapped in with the rest of the repository. Every value that came from a package,
a recipe or a manifest is escaped: a summary or a file name holding markup shows as text. Links are relative,
so the pages work wherever the folder is served from.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from rebuild.files import atomic_write

_MANIFEST = re.compile(r"^manifests/[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*\.json$")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; max-width: 80rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f5; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.85rem; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; }
.ok { color: #137333; } .bad { color: #b3261e; } .muted { color: #666; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _link(href: str | None, text: str, prefix: str = "") -> str:
    return f'<a href="{_e(prefix + href)}">{_e(text)}</a>' if href else ""


def _floors(manifest: dict) -> str:
    floors = manifest.get("floors") or {}
    results = floors.get("results") or []
    if not results:
        return '<span class="muted">none</span>'
    bad = [r for r in results if r.get("status") != "ok"]
    text = f"{len(results) - len(bad)} of {len(results)} met" + (" (skipped)" if floors.get("skipped") else "")
    return f'<span class="{"bad" if bad else "ok"}">{_e(text)}</span>'


def _edit(manifest: dict) -> str:
    spec = manifest.get("spec") or {}
    edits = spec.get("edits") or {}
    parts = [f"{name} → {value}" for name, value in (edits.get("macros") or {}).items()]
    parts += [f"+{name} {value}" for name, value in (edits.get("add_macros") or {}).items()]
    parts += [f"patch {p.get('file')}" for p in edits.get("patches") or []]
    before, after = spec.get("release_before"), spec.get("release_after")
    release = f" (Release {before} → {after})" if before and after and before != after else ""
    return _e("; ".join(parts) + release) if parts or release else '<span class="muted">none</span>'


def _install(packages: list[dict]) -> str:
    binary = next((p for p in packages if p.get("arch") != "src" and not p["file"].startswith("SRPMS/")), None)
    example = binary["file"] if binary else "ARCH/NAME.rpm"
    signed = sorted({p["signed_with"] for p in packages if p.get("signed_with")})
    key = (f"<p>Packages are signed with key <code>{_e(', '.join(signed))}</code>: import it first"
           " (<code>rpm --import KEY.asc</code>).</p>") if signed else "<p>Packages are not signed.</p>"
    return f"""<h2>Install</h2>
<p>On a host with yum or dnf, a <code>.repo</code> file whose <code>baseurl</code> is this page's folder:</p>
<pre>[rebuild]
name=RPMs rebuilt by rebuild
baseurl=URL-OF-THIS-FOLDER
gpgcheck={1 if signed else 0}</pre>
<p>On a 2003 host (Red Hat Linux 7.3 has no yum), fetch the package and let its own rpm install it:</p>
<pre>wget URL-OF-THIS-FOLDER/{_e(example)}
rpm -Uvh {_e(Path(example).name)}</pre>
{key}
<p>Every file's sha256 is in {_link("SHA256SUMS", "SHA256SUMS")}; check it and its signature before trusting
the packages: <code>gpg --verify SHA256SUMS.asc SHA256SUMS &amp;&amp; sha256sum -c SHA256SUMS</code>.</p>"""


def _row(entry: dict, manifest: dict, build_page: str) -> str:
    target = (manifest.get("target") or {}).get("name")
    return ("<tr>"
            f"<td>{_link(entry['file'], entry['nevra'])}<br><span class=\"muted\">{_e(entry.get('summary'))}</span></td>"
            f"<td>{_e(entry.get('arch'))}</td><td>{_e(entry.get('size'))}</td>"
            f"<td><code title=\"{_e(entry.get('sha256'))}\">{_e((entry.get('sha256') or '')[:16])}…</code></td>"
            f"<td>{_e(entry.get('signed_with') or 'unsigned')}</td>"
            f"<td>{_e(manifest.get('finished') or entry.get('published'))}</td>"
            f"<td>{_e(target)}</td><td>{_floors(manifest)}</td><td>{_edit(manifest)}</td>"
            f"<td>{_link(build_page, 'build')}</td></tr>")


def write_pages(staging: Path, packages: list[dict]) -> None:
    """index.html and builds/<nvr>.html in the repository tree *staging*, from its index entries."""
    manifests: dict[str, dict] = {}
    for entry in packages:
        name = entry.get("manifest") or ""
        if _MANIFEST.match(name) and name not in manifests and (staging / name).is_file():
            try:
                manifests[name] = json.loads((staging / name).read_text())
            except ValueError:  # an older repository's damaged copy: the page shows the package without it
                manifests[name] = {}
    builds: dict[str, list[dict]] = {}
    for entry in packages:
        builds.setdefault(entry.get("manifest") or "", []).append(entry)
    rows = []
    (staging / "builds").mkdir(exist_ok=True)
    for manifest_path, entries in sorted(builds.items()):
        manifest = manifests.get(manifest_path, {})
        nvr = Path(manifest_path).stem if _MANIFEST.match(manifest_path) else "unknown"
        page = f"builds/{nvr}.html"
        atomic_write(staging / page, _build_page(nvr, manifest, entries), mode=0o644)
        rows += [_row(entry, manifest, page) for entry in entries]
    body = f"""<h1>RPM repository</h1>
<p>{len(packages)} packages from {len(builds)} builds, rebuilt by rebuild. Machine-readable:
{_link("index.json", "index.json")}, {_link("repodata/repomd.xml", "repodata")}.</p>
<table><thead><tr><th>package</th><th>arch</th><th>size</th><th>sha256</th><th>signed with</th><th>built</th>
<th>target</th><th>floors</th><th>spec edit</th><th></th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
{_install(packages)}"""
    atomic_write(staging / "index.html", _page("RPM repository", body), mode=0o644)


def _build_page(nvr: str, manifest: dict, entries: list[dict]) -> str:
    up = "../"
    target = manifest.get("target") or {}
    spec = manifest.get("spec") or {}
    first = entries[0] if entries else {}
    evidence = [_link(first.get(key), label, up) for key, label in
                (("build_log", "build.log"), ("spec_diff", "spec.diff"), ("sbom", "SBOM (SPDX)"),
                 ("provenance", "provenance (in-toto/SLSA)"), ("manifest", "manifest.json"))]
    floors = (manifest.get("floors") or {}).get("results") or []
    floor_rows = "".join(f"<tr><td>{_e(f.get('name'))}</td><td>{_e(f.get('required'))}</td>"
                         f"<td>{_e(f.get('installed'))}</td>"
                         f"<td class=\"{'ok' if f.get('status') == 'ok' else 'bad'}\">{_e(f.get('status'))}</td></tr>"
                         for f in floors)
    checks = "".join(f"<li class=\"{'ok' if c.get('passed') else 'bad'}\">{_e(c.get('name'))}:"
                     f" {'passed' if c.get('passed') else 'FAILED'}</li>" for c in manifest.get("checks") or [])
    srpm = ((manifest.get("inputs") or {}).get("srpm") or {})
    body = f"""<p>{_link("index.html", "← all packages", up)}</p>
<h1>{_e(nvr)}</h1>
<p>Built from <code>{_e(srpm.get("file"))}</code> (sha256 <code>{_e(srpm.get("sha256"))}</code>) by recipe
<code>{_e((manifest.get("recipe") or {}).get("name"))}</code> on target <code>{_e(target.get("name"))}</code>
(image <code>{_e((target.get("image_id") or "")[:19])}</code>, rpm {_e(target.get("rpm_version"))}), finished
{_e(manifest.get("finished"))}.</p>
<h2>Packages</h2>
<table><thead><tr><th>package</th><th>size</th><th>sha256</th><th>signed with</th></tr></thead><tbody>
{"".join(f"<tr><td>{_link(e['file'], e['nevra'], up)}<br><span class='muted'>{_e(e.get('summary'))}</span></td>"
         f"<td>{_e(e.get('size'))}</td><td><code>{_e(e.get('sha256'))}</code></td>"
         f"<td>{_e(e.get('signed_with') or 'unsigned')}</td></tr>" for e in entries)}
</tbody></table>
<h2>Spec edit</h2>
<p>{_edit(manifest)}</p>
<ul>{"".join(f"<li><code>{_e(c)}</code></li>" for c in spec.get("changes") or [])}</ul>
<h2>Floors</h2>
{f"<table><thead><tr><th>package</th><th>at least</th><th>installed</th><th></th></tr></thead><tbody>{floor_rows}"
 "</tbody></table>" if floor_rows else "<p class='muted'>none</p>"}
<h2>Checks</h2>
<ul>{checks or "<li class='muted'>none</li>"}</ul>
<h2>Evidence</h2>
<p>{" · ".join(link for link in evidence if link)}</p>"""
    return _page(nvr, body)
