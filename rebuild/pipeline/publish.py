"""Publish result directories into a signed, checksummed RPM repository, atomically.

The new state is built beside the repository (packages already there are hard-linked,
new ones copied, then signed), ``createrepo_c --update`` writes the metadata,
``SHA256SUMS`` (and ``SHA256SUMS.asc``), ``index.json`` and the pages people read (``index.html``, one page
per build: ``repopage``) are written, and the new
tree is swapped in with one ``renameat2(RENAME_EXCHANGE)``. A failure at any point
leaves the previous repository exactly as it was.

A result folder may come from a CI job, and the publisher holds the signing key: nothing is
taken from manifest.json as a path. Outputs must be regular files inside the result folder
with the recorded digests; name, arch and NEVRA come from each RPM's own header; every
destination stays inside the staging tree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rebuild import hostcmd
from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.files import is_inside, read_user_file, sha256_file
from rebuild.log import Log
from rebuild.pipeline.repopage import write_pages
from rebuild.pipeline.result import SCHEMA_VERSION, Manifest, Output, ResultDir
from rebuild.systems.rpmfile import RpmInfo, read_info, read_summary

INDEX = "index.json"
# what a key ID, user ID or GnuPG home may not hold: they go into an rpm macros file, where % expands
_UNSAFE_FOR_MACROS = re.compile(r"[%\n\r\x00-\x1f\x7f]")
_INDEX_FILE = re.compile(r"^(SRPMS|[A-Za-z0-9_]+)/[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*\.rpm$")


@dataclass(frozen=True)
class Published:
    repo: Path
    added: tuple[dict, ...]
    kept: int
    packages: tuple[dict, ...]


def _load_result(directory: Path) -> tuple[ResultDir, Manifest, list[tuple[Output, RpmInfo]]]:
    """The verified result and each output with its header, which must say what the manifest says."""
    folder = ResultDir(directory)
    manifest = folder.verify()
    outputs = []
    for output in manifest.outputs:
        path = folder.output_path(output)
        info = read_info(path)
        if (info.nevra, info.is_source) != (output.nevra, output.source):
            raise CheckFailed(f"{directory}: {output.file} is {info.nevra} by its header, but manifest.json says"
                              f" {output.nevra}; refusing to publish")
        outputs.append((output, info))
    return folder, manifest, outputs


def _read_index(repo: Path) -> dict:
    path = repo / INDEX
    if not path.exists() and not path.is_symlink():
        return {"packages": []}
    what = f"{path}: the folder is not a repository rebuild published, or its index was damaged"
    try:
        data = json.loads(read_user_file(path, "repository index", max_bytes=64 << 20))
    except (UsageError, ValueError) as exc:
        raise UsageError(f"{what} ({getattr(exc, 'message', exc)})") from None
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, list):
        raise UsageError(f"{what} (no package list)")
    for entry in packages:
        ok = (isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("nevra", "file", "built_sha256"))
              and _INDEX_FILE.match(entry["file"]) and re.fullmatch(r"[0-9a-f]{64}", entry["built_sha256"]))
        if not ok:
            raise UsageError(f"{what} (entry {str(entry)[:80]!r})")
    return data


def _check_repo_folder(repo: Path, adopt: bool) -> None:
    """A repository folder is absent, empty, or one rebuild published (has our index.json); else refused."""
    if repo.is_symlink():
        raise UsageError(f"--repo {repo}: is a symlink; give the real folder")
    if not repo.exists():
        return
    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: is not a folder")
    if (repo / INDEX).is_file() or adopt or not any(repo.iterdir()):
        return
    raise UsageError(f"--repo {repo}: a non-empty folder that holds no repository rebuild published; publishing"
                     " would replace it (its modes and links too). Give an empty or new folder, or --adopt to"
                     " convert this one")


def _link_tree(src: Path, dest: Path) -> None:
    """Copy *src* to *dest*: RPMs as hard links (never modified in place), everything else as copies.
    Only folders and regular files: a symlink or a device in the repository is refused."""
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(parents=True, exist_ok=True)
        elif not stat.S_ISREG(st.st_mode):
            raise CheckFailed(f"{src}: {path.relative_to(src)} is not a regular file or folder; a repository holds"
                              " none of those: remove it and publish again")
        elif path.suffix == ".rpm":
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False when not supported."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def _swap_in(staging: Path, repo: Path) -> None:
    if not repo.exists():
        os.rename(staging, repo)
        return
    if _exchange(staging, repo):
        shutil.rmtree(staging, ignore_errors=True)  # now the old tree
        return
    old = repo.with_name(f".{repo.name}.old-{os.getpid()}")
    os.rename(repo, old)
    os.rename(staging, repo)
    shutil.rmtree(old, ignore_errors=True)


def _check_key_arguments(key: str | None, gpg_home: Path | None) -> None:
    for flag, value in (("--sign-key", key), ("--gpg-home", str(gpg_home) if gpg_home else None)):
        if value is not None and (_UNSAFE_FOR_MACROS.search(value) or not value.strip()):
            raise UsageError(f"{flag} {value!r}: may not hold %, newlines or control characters (it goes into an"
                             " rpm macros file, where % runs macros)")


def _sign(files: list[Path], key: str, gpg_home: Path | None, log: Log) -> None:
    gpg = shutil.which("gpg") or shutil.which("gpg2")
    if not gpg:
        raise EnvironmentProblem("gpg is not installed (Debian: apt-get install gnupg)")
    with tempfile.TemporaryDirectory(prefix="rebuild-sign-") as tmp:
        macros = Path(tmp) / "sign.macros"
        text = f"%_gpg_name {key}\n%__gpg {gpg}\n" + (f"%_gpg_path {gpg_home}\n" if gpg_home else "")
        macros.write_text(text)
        hostcmd.run(["rpmsign", "--load", str(macros), "--addsign", *map(str, files)], f"rpmsign with key {key}", log)


def _detach_sign(path: Path, key: str, gpg_home: Path | None, log: Log) -> None:
    gpg = shutil.which("gpg") or "gpg"
    argv = [gpg, "--batch", "--yes", "--armor", "--local-user", key, "--detach-sign", "--output", f"{path}.asc", str(path)]
    if gpg_home:
        argv[1:1] = ["--homedir", str(gpg_home)]
    hostcmd.run(argv, f"gpg signature of {path.name}", log)


def publish(results: list[Path], repo: Path, *, sign_key: str | None = None, gpg_home: Path | None = None,
            log: Log | None = None, adopt: bool = False) -> Published:
    """Publish *results* into *repo*; refuse anything whose digests or NEVRA history do not fit."""
    log = log or Log(quiet=True)
    _check_key_arguments(sign_key, gpg_home)
    if not shutil.which("createrepo_c"):
        raise EnvironmentProblem("createrepo_c is not installed (Debian: apt-get install createrepo-c)")
    repo = Path(os.path.abspath(repo))
    _check_repo_folder(repo, adopt)
    loaded = [_load_result(Path(d)) for d in results]
    index = _read_index(repo)
    published = {p["nevra"]: p for p in index["packages"]}
    repo.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{repo.name}.new-", dir=repo.parent))
    try:
        if repo.exists():
            _link_tree(repo, staging)
        added: list[dict] = []
        for folder, manifest, outputs in loaded:
            for output, info in outputs:
                entry = published.get(info.nevra)
                if entry is not None:
                    if entry["built_sha256"] != output.sha256:
                        raise CheckFailed(
                            f"{info.nevra} is already in {repo} with other content (built sha256 {entry['built_sha256']},"
                            f" now {output.sha256}); bump the release instead of replacing a published package"
                        )
                    continue
                # every part from the header (checked by read_info), never a path from manifest.json
                subdir = "SRPMS" if info.is_source else info.arch
                dest = staging / subdir / f"{info.nvr}.{info.arch}.rpm"
                if not is_inside(dest.parent, staging) or dest.parent.parent != staging:
                    raise CheckFailed(f"{folder.path}: {output.file} would be published outside the repository")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder.output_path(output), dest)
                source = next((i for _, i in outputs if i.is_source), info)
                manifest_copy = staging / "manifests" / f"{source.nvr}.json"
                manifest_copy.parent.mkdir(exist_ok=True)
                # the manifest in today's schema (a superset of every earlier one)
                manifest_copy.write_text(replace(manifest, schema_version=SCHEMA_VERSION).to_json())
                evidence = _copy_evidence(folder, manifest, staging, source.nvr)
                entry = {
                    "nevra": info.nevra,
                    "name": info.name,
                    "epoch": info.epoch,
                    "version": info.version,
                    "release": info.release,
                    "arch": info.arch,
                    "file": str(dest.relative_to(staging)),
                    "built_sha256": output.sha256,
                    "recipe": manifest.recipe.name,
                    "manifest": str(manifest_copy.relative_to(staging)),
                    "manifest_sha256": sha256_file(manifest_copy),
                    "published": datetime.now(UTC).isoformat(timespec="seconds"),
                    "signed_with": sign_key,
                    "summary": read_summary(dest),
                    **evidence,
                }
                published[info.nevra] = entry
                added.append(entry)
        if sign_key and added:
            with log.step(f"sign {len(added)} packages with {sign_key}"):
                _sign([staging / e["file"] for e in added], sign_key, gpg_home, log)
        for entry in published.values():
            path = staging / entry["file"]
            if path.is_symlink() or not path.is_file():
                raise CheckFailed(f"{repo}: {entry['file']} is listed in {INDEX} but missing; the repository was changed by hand")
            entry["sha256"] = sha256_file(path)
            entry["size"] = path.stat().st_size
        with log.step("createrepo_c"):
            # gzip: what every yum and dnf reads (createrepo_c 1.x would default to zstd)
            hostcmd.run(["createrepo_c", "--quiet", "--update", "--checksum", "sha256", "--general-compress-type", "gz",
                         str(staging)], "createrepo_c", log)
        packages = sorted(published.values(), key=lambda e: e["file"])
        listed = [(e["sha256"], e["file"]) for e in packages]
        for folder in ("provenance", "sbom"):  # the evidence is signed with the packages
            listed += [(sha256_file(f), str(f.relative_to(staging))) for f in sorted((staging / folder).glob("*.json"))]
        sums = "".join(f"{digest}  {name}\n" for digest, name in listed)
        (staging / "SHA256SUMS").write_text(sums)
        (staging / "SHA256SUMS.asc").unlink(missing_ok=True)
        if sign_key:
            _detach_sign(staging / "SHA256SUMS", sign_key, gpg_home, log)
        (staging / INDEX).write_text(json.dumps({"packages": packages}, indent=2) + "\n")
        write_pages(staging, packages)
        staging.chmod(0o755)
        _swap_in(staging, repo)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Published(repo, tuple(added), len(packages) - len(added), tuple(packages))


def _copy_evidence(folder: ResultDir, manifest: Manifest, staging: Path, nvr: str) -> dict:
    """The result's provenance statement and SBOM (digests checked by ResultDir.verify) into provenance/ and
    sbom/; the index entry's fields naming them."""
    fields = {}
    for name, sub, suffix in (("provenance.json", "provenance", ".intoto.json"), ("sbom.spdx.json", "sbom", ".spdx.json")):
        if name not in (manifest.attestations or {}):
            continue
        dest = staging / sub / f"{nvr}{suffix}"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(folder.path / name, dest)
        fields[sub] = str(dest.relative_to(staging))
        fields[f"{sub}_sha256"] = sha256_file(dest)
    for name, key in (("build.log", "build_log"), ("spec.diff", "spec_diff")):  # for people reading the pages
        source = folder.path / name
        if source.is_file() and not source.is_symlink():
            dest = staging / "logs" / nvr / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            fields[key] = str(dest.relative_to(staging))
    return fields


def step_summary(result: Published) -> str:
    """A Markdown table of the repository's packages (for $GITHUB_STEP_SUMMARY)."""
    lines = [f"### RPMs published to `{result.repo.name}`", "", "| package | size | sha256 |", "|---|---:|---|"]
    new = {e["nevra"] for e in result.added}
    for e in result.packages:
        mark = " (new)" if e["nevra"] in new else ""
        lines.append(f"| `{Path(e['file']).name}`{mark} | {e['size']} | `{e['sha256']}` |")
    return "\n".join(lines) + "\n"
