"""ckg.yaml workflow steps, env hand-over through tmp-run-env.out, grids."""


import pytest

from ckg.errors import InvalidInput, RunFailed, UsageError
from ckg.run import steps, workflow
from importers import ckgyaml


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
