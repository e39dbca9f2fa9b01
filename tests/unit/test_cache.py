"""Every input that decides a build's output changes its key; the index serves only intact results."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rebuild.config.floors import load_manifest
from rebuild.config.recipe import Check, SpecEdits, load_recipe
from rebuild.config.target import load_target
from rebuild.pipeline import buildindex as cache
from tests.unit.test_recipe import GOOD


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD)
    floors = tmp_path / "floors.yaml"
    floors.write_text("floors:\n  a: '1'\n")
    recipe = dataclasses.replace(load_recipe(path), floors=load_manifest(floors))
    return recipe, load_target("testroot")


def key(recipe, target, image="sha256:aa", srpm="0" * 64, skip=False):
    return cache.build_key(recipe, target, image, srpm, skip_deps_check=skip)[0]


def test_same_inputs_same_key(base):
    recipe, target = base
    assert key(recipe, target) == key(recipe, target)


def test_each_input_changes_the_key(base, monkeypatch):
    recipe, target = base
    reference = key(recipe, target)
    changed = {
        "srpm": key(recipe, target, srpm="1" * 64),
        "image": key(recipe, target, image="sha256:bb"),
        "skip-deps-check": key(recipe, target, skip=True),
        "edits": key(dataclasses.replace(recipe, spec=SpecEdits(macros=(("errata", "72"),))), target),
        "release suffix": key(dataclasses.replace(recipe, spec=dataclasses.replace(recipe.spec, release_suffix=".x")), target),
        "checks": key(dataclasses.replace(recipe, checks=(Check("other", ("true",)),)), target),
        "target definition": key(recipe, dataclasses.replace(target, definition_sha256="f" * 64)),
    }
    recipe.floors.path.write_text("floors:\n  a: '2'\n")
    changed["floors manifest"] = key(dataclasses.replace(recipe, floors=load_manifest(recipe.floors.path)), target)
    monkeypatch.setattr(cache, "__version__", "99.0")
    changed["rebuild version"] = key(recipe, target)
    monkeypatch.undo()
    assert key(recipe, target) == reference
    assert {name: k != reference for name, k in changed.items()} == {name: True for name in changed}
    assert len(set(changed.values())) == len(changed)


def test_lookup_rejects_corrupt_or_foreign_results(tmp_path):
    out = tmp_path / "out"
    result = out / "x-1-1"
    (result / "RPMS" / "x86_64").mkdir(parents=True)
    rpm = result / "RPMS" / "x86_64" / "x-1-1.x86_64.rpm"
    rpm.write_bytes(b"payload")
    from rebuild.files import sha256_file

    output = {"file": "RPMS/x86_64/x-1-1.x86_64.rpm", "name": "x", "epoch": None, "version": "1", "release": "1",
              "arch": "x86_64", "nevra": "x-1-1.x86_64", "source": False, "size": 7, "sha256": sha256_file(rpm)}
    manifest = {"rebuild_version": "0.1.0", "recipe": {"name": "x", "path": "/x.yaml", "sha256": "0" * 64},
                "started": "2026-01-01T00:00:00+00:00", "build_key": "k1", "outputs": [output]}
    (result / "manifest.json").write_text(json.dumps(manifest))
    cache.record(out, "k1", result)
    assert cache.lookup(out, "k1")[0] == result
    assert cache.lookup(out, "k2") is None
    rpm.write_bytes(b"paylOad")
    assert cache.lookup(out, "k1") is None, "same size, other content"
    rpm.write_bytes(b"payload")
    manifest["build_key"] = "k0"
    (result / "manifest.json").write_text(json.dumps(manifest))
    assert cache.lookup(out, "k1") is None, "the directory now holds another build"
