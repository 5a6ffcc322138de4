"""ckg.yaml workflow steps, env hand-over through tmp-run-env.out, grids."""

import pytest

from ckg.core.errors import InvalidInput, RunFailed, UsageError
from ckg.formats import ckgyaml
from ckg.run import steps, workflow


def _prepare(fmt, meta, folder, workdir, **kw):
    args = {"step_env": {}, "params": {}, "dep_env": {}, "user_env": {}}
    args.update(kw)
    return steps.prepare(fmt, meta, artifact_dir=folder, workdir=workdir, **args)


def test_scripts_do_not_run_as_workflow_steps(tmp_path):
    with pytest.raises(RunFailed, match="mlc scripts run through ckg.run.scripts"):
        _prepare("mlc", {}, tmp_path, tmp_path / "w")


def test_other_formats_are_not_runnable(tmp_path):
    with pytest.raises(RunFailed, match="not 'ck'"):
        steps.check_runnable("ck", "soft-x", tmp_path)


def test_read_env_out_strips_quotes_and_joins_path_lists(tmp_path):
    out = tmp_path / "tmp-run-env.out"
    out.write_text('CM_A="a b"\nexport CM_B=2\n+PATH=/x\n+PATH=/y\nnot a line\n')
    assert steps.read_env_out(out) == {"CM_A": "a b", "CM_B": "2", "+PATH": "/x:/y"}


def test_workflow_command_is_rendered_with_quoted_params(tmp_path):
    meta = {
        "alias": "w",
        "run": "{python} t.py --name {name} --n {n}",
        "params": {"name": "x", "n": 1},
        "env": {"OMP_NUM_THREADS": 1},
        "timeout": 5,
    }
    prepared = _prepare("ckg", meta, tmp_path, tmp_path / "w", params={"name": "a b; rm"})
    assert prepared.command.endswith("t.py --name 'a b; rm' --n 1")
    assert prepared.set_env["OMP_NUM_THREADS"] == "1"
    assert prepared.timeout_s == 5.0


def test_check_meta_rejects_undeclared_template_and_grid_names():
    with pytest.raises(InvalidInput, match=r"w/ckg.yaml: run uses \{k\}, which is not in params"):
        ckgyaml.check_meta({"alias": "a", "run": "echo {k}"}, "w/ckg.yaml")
    with pytest.raises(InvalidInput, match="grid names z, not in params"):
        ckgyaml.check_meta(
            {"alias": "a", "run": "echo {k}", "params": {"k": 1}, "grid": {"z": [1]}}, "f"
        )
    warnings = ckgyaml.check_meta({"alias": "a", "run": "true", "colour": 1}, "f")
    assert warnings == ["f: unknown key 'colour'"]


def test_grid_expands_lists_of_products_in_order():
    grid = [{"model": ["a", "b"], "C": [1, 2]}, {"model": "knn"}]
    assert list(ckgyaml.expand_grid(grid)) == [
        {"model": "a", "C": 1},
        {"model": "a", "C": 2},
        {"model": "b", "C": 1},
        {"model": "b", "C": 2},
        {"model": "knn"},
    ]


@pytest.mark.parametrize("spec", ["model", "=1,2", "model=", "k=1,2 k=3"])
def test_malformed_grid_option_is_a_usage_error(spec):
    with pytest.raises(UsageError, match="--grid"):
        workflow.parse_grid(spec.split(" "))


@pytest.mark.parametrize("pair", ["NOVALUE", "=x", "1BAD=x", "A B=x"])
def test_malformed_env_option_is_a_usage_error(pair):
    with pytest.raises(UsageError, match="--env expects NAME=VALUE"):
        workflow.parse_env([pair])


def test_env_option_accepts_step_scoped_names():
    assert workflow.parse_env(["get-openssl:CM_REQUIRE_INSTALL=yes"]) == {
        "get-openssl:CM_REQUIRE_INSTALL": "yes"
    }


def _step(fmt="ckg", meta=None, env=None, after=(), **kw):
    from ckg.plan.model import Step

    return Step(
        id=kw.get("id", "w"),
        uid=kw.get("uid", "u-w"),
        alias="w",
        kind="workflow",
        format=fmt,
        path="",
        source_uid="s",
        variations=[],
        env=env or {},
        new_env_keys=[],
        meta=meta or {},
        reason="target",
        after=list(after),
    )


def test_grid_points_are_the_grid_over_the_targets_parameters_only():
    from ckg.run.runner import grid_points

    step = _step(meta={"params": {"n": 1, "model": "knn"}})
    assert grid_points({}, step) == [{}]
    assert grid_points({"n": [1, 2]}, step) == [{"n": 1}, {"n": 2}]
    script = _step("mlc", meta={"default_env": {"MLC_X": "1"}, "input_mapping": {"y": "MLC_Y"}})
    assert grid_points([{"MLC_X": "2"}, {"MLC_Y": ["a"]}], script) == [
        {"MLC_X": "2"},
        {"MLC_Y": "a"},
    ]
    with pytest.raises(
        UsageError, match=r"--grid: m is not a parameter of w \(its parameters: model, n\)"
    ):
        grid_points({"n": [1], "m": [2]}, step)


def test_step_cache_key_ignores_env_a_caller_hands_down_but_not_declared_env(tmp_path):
    from ckg.run.points import StepCache
    from ckg.run.runner import Options

    cache = StepCache(tmp_path, Options(), {"G": "1"}, "platform-1")
    meta = {"env": {"MLC_OWN": "a"}}
    base = cache.key(_step("mlc", meta, {"MLC_OWN": "a"}), {}, "d1")
    handed = _step("mlc", meta, {"MLC_OWN": "a", "MLC_CALLER": "x"})
    assert cache.key(handed, {}, "d1") == base
    assert cache.key(_step("mlc", meta, {"MLC_OWN": "b"}), {}, "d1") != base
    assert cache.key(_step("mlc", meta, {"MLC_OWN": "a"}), {}, "d2") != base
    assert cache.key(_step("mlc", meta, {"MLC_OWN": "a"}), {"n": 1}, "d1") != base
    assert (
        StepCache(tmp_path, Options(), {}, "platform-1").key(
            _step("mlc", meta, {"MLC_OWN": "a"}), {}, "d1"
        )
        != base
    )  # the user's --env counts
    # A dependency's key is part of its dependant's: it changes when the dependency's does.
    after = _step("mlc", meta, {"MLC_OWN": "a"}, after=["dep"])
    first = cache.key(after, {}, "d1")
    cache.remember(_step(id="dep"), "k1", {})
    assert cache.key(after, {}, "d1") != first
