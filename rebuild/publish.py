"""Publish result directories into a signed, checksummed RPM repository, atomically.

The new state is built beside the repository (packages already there are hard-linked,
new ones copied, then signed), ``createrepo_c --update`` writes the metadata,
``SHA256SUMS`` (and ``SHA256SUMS.asc``) and ``index.json`` are written, and the new
tree is swapped in with one ``renameat2(RENAME_EXCHANGE)``. A failure at any point
leaves the previous repository exactly as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rebuild.errors import CheckFailed, EnvironmentProblem, UsageError
from rebuild.log import Log
from rebuild.rpmfile import sha256_file

INDEX = "index.json"


@dataclass(frozen=True)
class Published:
    repo: Path
    added: tuple[dict, ...]
    kept: int
    packages: tuple[dict, ...]


def _load_result(directory: Path) -> dict:
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{directory}: no manifest.json; is this a result directory of `rebuild build`?") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable manifest: {exc}") from None
    outputs = manifest.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise UsageError(f"{path}: lists no outputs")
    for output in outputs:
        file = directory / output["file"]
        if not file.is_file():
            raise CheckFailed(f"{directory}: {output['file']} is listed in manifest.json but missing; refusing to publish")
        if file.stat().st_size != output["size"] or sha256_file(file) != output["sha256"]:
            raise CheckFailed(
                f"{directory}: {output['file']} does not match the sha256 in manifest.json; refusing to publish"
                " (rebuild it, or find out who changed it)"
            )
    return manifest


def _read_index(repo: Path) -> dict:
    try:
        return json.loads((repo / INDEX).read_text())
    except FileNotFoundError:
        return {"packages": []}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{repo / INDEX}: unreadable ({exc}); the folder is not a repository rebuild published") from None


def _link_tree(src: Path, dest: Path) -> None:
    """Copy *src* to *dest*: RPMs as hard links (never modified in place), everything else as copies."""
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
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


def _run(argv: list[str], what: str, log: Log, env: dict | None = None) -> None:
    log.command(argv)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}): {' | '.join(detail)}")


def _sign(files: list[Path], key: str, gpg_home: Path | None, log: Log) -> None:
    if not shutil.which("rpmsign"):
        raise EnvironmentProblem("rpmsign is not installed (Debian: apt-get install rpm)")
    gpg = shutil.which("gpg") or shutil.which("gpg2")
    if not gpg:
        raise EnvironmentProblem("gpg is not installed (Debian: apt-get install gnupg)")
    with tempfile.NamedTemporaryFile("w", prefix="rebuild-sign-", suffix=".macros", delete=False) as macros:
        macros.write(f"%_gpg_name {key}\n%__gpg {gpg}\n")
        if gpg_home:
            macros.write(f"%_gpg_path {gpg_home}\n")
    try:
        _run(["rpmsign", "--load", macros.name, "--addsign", *map(str, files)], f"rpmsign with key {key}", log)
    finally:
        os.unlink(macros.name)


def _detach_sign(path: Path, key: str, gpg_home: Path | None, log: Log) -> None:
    gpg = shutil.which("gpg") or "gpg"
    argv = [gpg, "--batch", "--yes", "--armor", "--local-user", key, "--detach-sign", "--output", f"{path}.asc", str(path)]
    if gpg_home:
        argv[1:1] = ["--homedir", str(gpg_home)]
    _run(argv, f"gpg signature of {path.name}", log)


def publish(results: list[Path], repo: Path, *, sign_key: str | None = None, gpg_home: Path | None = None,
            log: Log | None = None) -> Published:
    """Publish *results* into *repo*; refuse anything whose digests or NEVRA history do not fit."""
    log = log or Log(quiet=True)
    if not shutil.which("createrepo_c"):
        raise EnvironmentProblem("createrepo_c is not installed (Debian: apt-get install createrepo-c)")
    repo = Path(repo).resolve()
    manifests = [(Path(d).resolve(), _load_result(Path(d))) for d in results]
    index = _read_index(repo)
    published = {p["nevra"]: p for p in index["packages"]}
    repo.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{repo.name}.new-", dir=repo.parent))
    try:
        if repo.exists():
            _link_tree(repo, staging)
        added: list[dict] = []
        for directory, manifest in manifests:
            for output in manifest["outputs"]:
                nevra = output["nevra"]
                entry = published.get(nevra)
                if entry is not None:
                    if entry["built_sha256"] != output["sha256"]:
                        raise CheckFailed(
                            f"{nevra} is already in {repo} with other content (built sha256 {entry['built_sha256']},"
                            f" now {output['sha256']}); bump the release instead of replacing a published package"
                        )
                    continue
                folder = "SRPMS" if output["source"] else output["arch"]
                dest = staging / folder / Path(output["file"]).name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(directory / output["file"], dest)
                manifest_copy = staging / "manifests" / f"{directory.name}.json"
                manifest_copy.parent.mkdir(exist_ok=True)
                shutil.copyfile(directory / "manifest.json", manifest_copy)
                entry = {
                    "nevra": nevra,
                    "name": output["name"],
                    "epoch": output["epoch"],
                    "version": output["version"],
                    "release": output["release"],
                    "arch": output["arch"],
                    "file": str(dest.relative_to(staging)),
                    "built_sha256": output["sha256"],
                    "recipe": manifest.get("recipe", {}).get("name"),
                    "manifest": str(manifest_copy.relative_to(staging)),
                    "manifest_sha256": sha256_file(manifest_copy),
                    "published": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "signed_with": sign_key,
                }
                published[nevra] = entry
                added.append(entry)
        if sign_key and added:
            with log.step(f"sign {len(added)} packages with {sign_key}"):
                _sign([staging / e["file"] for e in added], sign_key, gpg_home, log)
        for entry in published.values():
            path = staging / entry["file"]
            if not path.is_file():
                raise CheckFailed(f"{repo}: {entry['file']} is listed in {INDEX} but missing; the repository was changed by hand")
            entry["sha256"] = sha256_file(path)
            entry["size"] = path.stat().st_size
        with log.step("createrepo_c"):
            _run(["createrepo_c", "--quiet", "--update", "--checksum", "sha256", str(staging)], "createrepo_c", log)
        packages = sorted(published.values(), key=lambda e: e["file"])
        sums = "".join(f"{e['sha256']}  {e['file']}\n" for e in packages)
        (staging / "SHA256SUMS").write_text(sums)
        (staging / "SHA256SUMS.asc").unlink(missing_ok=True)
        if sign_key:
            _detach_sign(staging / "SHA256SUMS", sign_key, gpg_home, log)
        (staging / INDEX).write_text(json.dumps({"packages": packages}, indent=2) + "\n")
        staging.chmod(0o755)
        _swap_in(staging, repo)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Published(repo, tuple(added), len(packages) - len(added), tuple(packages))


def step_summary(result: Published) -> str:
    """A Markdown table of the repository's packages (for $GITHUB_STEP_SUMMARY)."""
    lines = [f"### RPMs published to `{result.repo.name}`", "", "| package | size | sha256 |", "|---|---:|---|"]
    new = {e["nevra"] for e in result.added}
    for e in result.packages:
        mark = " (new)" if e["nevra"] in new else ""
        lines.append(f"| `{Path(e['file']).name}`{mark} | {e['size']} | `{e['sha256']}` |")
    return "\n".join(lines) + "\n"
