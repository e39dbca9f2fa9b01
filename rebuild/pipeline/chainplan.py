"""A chain's plan: its waves for a CI system (``rebuild plan --chain``): json entries, shell lines run in
order, a GitLab child pipeline with a stage per wave, or a whole GitHub workflow with a job per wave. Each
wave's builds take the earlier waves' results with ``--with-rpms``, so a wave's job needs only its own
recipes and those artifacts."""

from __future__ import annotations

import json
import shlex

import yaml

from rebuild.pipeline.plan import gitlab_head, gitlab_image_job, gitlab_publish_job


class _Plain(yaml.SafeDumper):
    """Every repeated mapping written out in full: CI linters refuse YAML aliases where a step belongs."""

    def ignore_aliases(self, data) -> bool:
        return True


def chain_entries(order, graph, shown: dict[str, str], target: str) -> list[dict]:
    """One entry per member with its wave and the members it needs (directly, and what those need: their RPMs
    must be in its root too)."""
    wave_of = {m.name: number for number, wave in enumerate(order, 1) for m in wave}
    direct = {name: {e.provider for e in graph if e.needer == name} for name in wave_of}

    def closure(name: str) -> list[str]:
        seen: set[str] = set()
        stack = list(direct[name])
        while stack:
            other = stack.pop()
            if other not in seen:
                seen.add(other)
                stack += direct[other]
        return sorted(seen, key=lambda n: (wave_of[n], n))

    return [{"name": m.name, "recipe": shown[m.name], "target": target, "wave": wave_of[m.name],
             "needs": sorted(direct[m.name]), "needs_all": closure(m.name)}
            for wave in order for m in wave]


def render_chain(entries: list[dict], fmt: str, out: str = "artifacts", executor: str = "docker") -> str:
    """The waves as *fmt*: json (entries), shell (one `rebuild build` line per wave, to run in order: each
    takes the earlier waves' results with --with-rpms), gitlab (a child pipeline: a stage per wave) or github
    (a whole workflow: a job per wave)."""
    if fmt == "json":
        return json.dumps(entries, indent=2)
    waves = sorted({e["wave"] for e in entries})
    q = shlex.quote
    if fmt == "shell":
        lines = []
        for k in waves:
            members = [e for e in entries if e["wave"] == k]
            earlier = sorted({wave_of for e in members for wave_of in _waves_needed(e, entries)})
            lines.append(f"rebuild build {' '.join(q(e['recipe']) for e in members)} --target {q(members[0]['target'])}"
                         f" --out {q(f'{out}/wave-{k}')}" + "".join(f" --with-rpms {q(f'{out}/wave-{j}')}" for j in earlier))
        return "\n".join(lines)
    if fmt == "gitlab":
        return gitlab_chain(entries, waves, executor)
    if fmt == "github":
        return github_chain(entries, waves)
    raise ValueError(fmt)


def _waves_needed(entry: dict, entries: list[dict]) -> set[int]:
    wave_of = {e["name"]: e["wave"] for e in entries}
    return {wave_of[n] for n in entry["needs_all"]}


def gitlab_chain(entries: list[dict], waves: list[int], executor: str = "docker") -> str:
    """The child pipeline of a chain: the image once, a stage per wave whose jobs need (and take the artifacts
    of) the image job and every member they need, then publish."""
    target = entries[0]["target"]
    q = shlex.quote
    child = {"stages": ["image", *[f"wave-{k}" for k in waves], "publish"], **gitlab_head(executor),
             f"image:{target}": gitlab_image_job(target)}
    for e in entries:
        folders = "".join(f" --with-rpms results/wave-{j}" for j in sorted(_waves_needed(e, entries)))
        child[f"build:{e['name']}"] = {
            "stage": f"wave-{e['wave']}",
            "needs": [f"image:{target}", *[f"build:{n}" for n in e["needs_all"]]],
            "script": [f'.venv/bin/rebuild image {q(target)} --pull "$(cat image-{target}.ref)"',
                       f".venv/bin/rebuild build {q(e['recipe'])} --target {q(target)} --out results/wave-{e['wave']}"
                       f"{folders} ${{FORCE:+--force}}"],
            "artifacts": {"paths": [f"results/wave-{e['wave']}/"]},
        }
    child["publish"] = gitlab_publish_job([f"build:{e['name']}" for e in entries], "results/wave-*/*/", executor)
    return yaml.dump(child, Dumper=_Plain, sort_keys=False, width=200)


_GH_SETUP = [{"uses": "actions/checkout@v4"},
             {"name": "Install rpm tools",
              "run": "sudo apt-get update && sudo apt-get install -y rpm python3-rpm createrepo-c debootstrap"},
             {"name": "Set up rebuild", "run": "make venv"}]
_GH_LOGIN = {"name": "Log in to the container registry",
             "run": 'echo "${{ secrets.GITHUB_TOKEN }}" | docker login ghcr.io -u "${{ github.actor }}" --password-stdin'}


def _gh_download(wave: int) -> dict:
    """A wave's results, every member's artifact merged into results/wave-N/ (where its builds wrote them)."""
    return {"uses": "actions/download-artifact@v4",
            "with": {"pattern": f"results-wave-{wave}-*", "path": f"results/wave-{wave}", "merge-multiple": True}}


def github_chain(entries: list[dict], waves: list[int]) -> str:
    """A workflow for the chain: the image once (pushed by digest), a job per wave (a matrix of its members)
    that needs the wave before and takes every earlier wave's results, then publish."""
    import yaml

    target = entries[0]["target"]
    jobs: dict = {"image": {
        "runs-on": "ubuntu-latest",
        "outputs": {"ref": "${{ steps.image.outputs.ref }}"},
        "steps": [*_GH_SETUP, _GH_LOGIN,
                  {"id": "image", "name": "Make the image once and push it by digest",
                   "run": f'sudo -E .venv/bin/rebuild image {target} --push "$REGISTRY/{target}" > image.out\n'
                          'echo "ref=$(tail -n 1 image.out)" >> "$GITHUB_OUTPUT"'}]}}
    for k in waves:
        members = [e for e in entries if e["wave"] == k]
        earlier = sorted({j for e in members for j in _waves_needed(e, entries)})
        steps = [*_GH_SETUP, _GH_LOGIN,
                 {"name": "Pull the target's image by digest",
                  "run": f'sudo -E .venv/bin/rebuild image {target} --pull "${{{{ needs.image.outputs.ref }}}}"'}]
        steps += [_gh_download(j) for j in earlier]
        folders = "".join(f" --with-rpms results/wave-{j}" for j in earlier)
        steps += [{"name": "Build", "env": {"RECIPE": "${{ matrix.recipe }}"},
                   "run": f'sudo -E .venv/bin/rebuild build "$RECIPE" --target {target} --out results/wave-{k}{folders}'},
                  {"uses": "actions/upload-artifact@v4",
                   "with": {"name": f"results-wave-{k}-${{{{ matrix.name }}}}", "path": f"results/wave-{k}/"}}]
        jobs[f"wave-{k}"] = {"needs": ["image", *([f"wave-{k - 1}"] if k > 1 else [])], "runs-on": "ubuntu-latest",
                             "strategy": {"fail-fast": False, "matrix": {"include": [
                                 {"name": e["name"], "recipe": e["recipe"]} for e in members]}},
                             "steps": steps}
    jobs["publish"] = {"needs": [f"wave-{waves[-1]}"], "runs-on": "ubuntu-latest",
                       "steps": [*_GH_SETUP, *[_gh_download(k) for k in waves],
                                 {"name": "Import the signing key", "env": {"KEY": "${{ secrets.RPM_SIGNING_KEY }}"},
                                  "run": "printf '%s\\n' \"$KEY\" | gpg --batch --import"},
                                 {"name": "Publish", "env": {"KEY_ID": "${{ secrets.RPM_SIGNING_KEY_ID }}"},
                                  "run": '.venv/bin/rebuild publish results/wave-*/*/ --repo repo --sign-key "$KEY_ID"'},
                                 {"uses": "actions/upload-artifact@v4", "with": {"name": "repo", "path": "repo/"}}]}
    workflow = {"name": "rpms-chain", "on": {"workflow_dispatch": {}},
                "permissions": {"contents": "read", "packages": "write"},
                "env": {"REGISTRY": "ghcr.io/${{ github.repository_owner }}/rebuild",
                        "REBUILD_CACHE": "${{ github.workspace }}/.rebuild-cache"},
                "jobs": jobs}
    return ("# written by `rebuild plan --chain --format github`: the chain's waves, a job each, in order\n"
            + yaml.dump(workflow, Dumper=_Plain, sort_keys=False, width=200))
