"""Registries, member lists, dvc.yaml and params agree; a registry explains an unknown name."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from leanml import data, models, nas, params, search
from leanml.errors import LeanmlError
from leanml.registry import Registry
from tests.conftest import ROOT

# family -> (its registry's module and attribute, the params keys every member shares)
FAMILIES = {
    "compress": ("leanml.compress", "METHODS", {"fine_tune", "sources"}),
    "search": ("leanml.search", "ALGORITHMS", search.SHARED),
    "nas": ("leanml.nas", "STRATEGIES", nas.SHARED),
}
# the report stage of each family and the per-member file it depends on and overlays
REPORTS = {
    "compress": (
        "compress_report",
        "reports/compress/{}/results.csv",
        "compress_accuracy_vs_bytes",
    ),
    "search": ("search_report", "reports/search/{}/convergence.csv", "search_convergence"),
    "nas": ("nas_report", "reports/nas/{}/convergence.csv", "nas_convergence"),
}


def _registry(family: str):
    import importlib

    module, attr, _ = FAMILIES[family]
    return getattr(importlib.import_module(module), attr)


def _resolve(registry: Registry, name: str):
    """The object a registry entry names; every family uses the one Registry style."""
    assert isinstance(registry, Registry), f"{registry!r} is not a leanml.registry.Registry"
    return registry.get(name)


def disagreements(root: Path) -> list[str]:
    """Every way the project at `root` has a member list, dvc.yaml and params out of step."""
    from dvc.repo import Repo

    members = yaml.safe_load((root / "leanml/paths.yaml").read_text())["members"]
    repo = Repo(str(root))
    try:
        stages = {stage.addressing.split(":")[-1]: stage for stage in repo.index.stages}
        plots = {k: v for item in next(iter(repo.index._plots.values())) for k, v in item.items()}
    finally:
        repo.close()
    problems = []
    for family, listed in members.items():
        listed = list(listed)
        registered = list(_registry(family))
        if registered != listed:
            problems.append(f"{family}: registry {registered} != paths.yaml members {listed}")
        generated = [name.split("@")[1] for name in stages if name.startswith(f"{family}@")]
        if generated != listed:
            problems.append(f"{family}: dvc.yaml stages {generated} != members {listed}")
        section = params.Params.model_fields[family].annotation.model_fields
        own = set(section) - FAMILIES[family][2]
        if not own <= set(listed):
            problems.append(f"{family}: params sections {sorted(own - set(listed))} have no member")
        for name in listed:
            stage = stages.get(f"{family}@{name}")
            keys = {key for dep in (stage.params if stage else []) for key in dep.params}
            if name in section and f"{family}.{name}" not in keys:
                problems.append(f"{family}@{name}: does not depend on params {family}.{name}")
            if family != "nas" and name not in section:  # a NAS strategy may need no section
                problems.append(f"{family}: member {name} has no params section")
        report, pattern, plot = REPORTS[family]
        wanted = {pattern.format(name) for name in listed}
        got = {str(d.def_path) for d in stages[report].deps if str(d.def_path).endswith(".csv")}
        if got != wanted:
            problems.append(f"{report}: deps {sorted(got)} != one per member {sorted(wanted)}")
        if set(plots[plot]["y"]) != wanted:
            problems.append(f"plots {plot}: {sorted(plots[plot]['y'])} != {sorted(wanted)}")
    return problems


def test_registries_member_lists_dvc_and_params_agree():
    assert disagreements(ROOT) == []


@pytest.mark.slow  # spawns git and dvc
def test_a_member_added_in_one_place_only_is_caught(tmp_path):
    """A new search algorithm named in paths.yaml but nowhere else: every missing place shows."""
    for name in ("dvc.yaml", "params.yaml", "leanml/paths.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = Path(sys.executable).with_name("dvc")  # this venv's, whatever PATH says
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    text = (tmp_path / "leanml/paths.yaml").read_text()
    edited = text.replace(
        "search: [ga, pso, bayes, random, tpe]", "search: [ga, pso, bayes, random, tpe, cmaes]"
    )
    assert edited != text
    (tmp_path / "leanml/paths.yaml").write_text(edited)

    found = "\n".join(disagreements(tmp_path))
    assert "search: registry ['ga', 'pso', 'bayes', 'random', 'tpe'] != paths.yaml members" in found
    assert "search: member cmaes has no params section" in found
    assert "search_report: deps" in found and "reports/search/cmaes/convergence.csv" in found
    assert "plots search_convergence" in found
    assert "search@cmaes: does not depend" not in found  # the stage itself is generated


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_entry_imports_to_a_class_or_function(family):
    registry = _registry(family)
    for name in registry:
        target = _resolve(registry, name)
        assert inspect.isclass(target), f"{family} {name}: {target!r} is not a class"


@pytest.mark.parametrize(
    ("registry", "allowed"),
    [
        (models.BUILDERS, params.ModelSpec.model_fields["kind"].annotation.__args__),
        (data.LOADERS, params.DATASETS),
    ],
    ids=["models", "data"],
)
def test_model_and_data_registries_match_their_params_choices(registry, allowed):
    assert registry.names() == list(allowed)
    for name in registry:
        assert inspect.isfunction(registry.get(name)), name


@pytest.mark.parametrize(
    ("registry", "family"),
    [
        (models.BUILDERS, "train.model.kind"),
        (data.LOADERS, "base.dataset"),
        ("compress", "compress: method"),
    ],
    ids=["models", "data", "compress"],
)
def test_an_unknown_name_is_a_clear_error_listing_the_allowed(registry, family):
    registry = _registry(registry) if isinstance(registry, str) else registry
    with pytest.raises(LeanmlError) as caught:
        registry.check("nope")
    message = str(caught.value)
    assert message.startswith(f"{family}: must be one of ")
    assert message.endswith("got 'nope'")
    for name in registry:
        assert name in message
    with pytest.raises(LeanmlError, match=f"^{family}: must be one of"):
        registry.get("nope")


def test_the_public_entry_points_explain_an_unknown_name():
    from leanml import compress

    cfg = params.parse({})
    with pytest.raises(
        LeanmlError,
        match="compress: unknown method 'nope'; registered methods are prune, quantize, lowrank, "
        "combined",
    ):
        compress.get("nope", cfg)
    with pytest.raises(
        LeanmlError, match="base.dataset: must be one of digits, mnist, fashion_mnist, npz, got 'x'"
    ):
        data.load("x")
    spec = params.ModelSpec().model_copy(update={"kind": "rnn"})  # past validation, on purpose
    with pytest.raises(LeanmlError, match="train.model.kind: must be one of mlp, cnn, got 'rnn'"):
        models.build(spec, (8, 8, 1), 10)


def test_a_malformed_entry_is_refused():
    with pytest.raises(ValueError, match="'bad' -> 'leanml.data.load' is not 'module:attr'"):
        Registry("base.dataset", {"bad": "leanml.data.load"})
