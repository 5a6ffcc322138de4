"""Steps of both runnable formats, env hand-over through tmp-run-env.out, ckg.yaml and grids."""

import os
from pathlib import Path

import pytest

from ckg.errors import InvalidInput, RunFailed, UsageError
from ckg.run import steps, workflow
from ckg.run.execute import execute


def _script(folder: Path, body: str, *, customize: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.sh").write_text("#!/bin/bash\nset -e\n" + body)
    if customize:
        (folder / "customize.py").write_text("def preprocess(i):\n    return {'return': 0}\n")
    return folder


def _prepare(fmt, meta, folder, workdir, **kw):
    args = {"step_env": {}, "params": {}, "dep_env": {}, "user_env": {}}
    args.update(kw)
    return steps.prepare(fmt, meta, artifact_dir=folder, workdir=workdir, **args)


@pytest.mark.parametrize("fmt, prefix", [("cm", "CM_"), ("mlc", "MLC_")])
def test_env_flows_from_run_sh_to_its_dependant(tmp_path, fmt, prefix):
    dep = _script(
        tmp_path / "get-tool",
        f'echo "{prefix}TOOL_BIN=$PWD/bin/tool" > tmp-run-env.out\n'
        f'echo "{prefix}UNRELATED=x" >> tmp-run-env.out\n'
        'echo "+PATH=$PWD/bin" >> tmp-run-env.out\n',
    )
    app = _script(
        tmp_path / "app",
        f'echo "tool=${prefix}TOOL_BIN unrelated=${{{prefix}UNRELATED:-unset}}"\n'
        'echo "path=${PATH%%:*}"\n'
        f'echo "me=${prefix}TMP_CURRENT_SCRIPT_PATH"\n',
    )
    env = dict(os.environ)
    first = _prepare(fmt, {}, dep, tmp_path / "w1", step_env={f"{prefix}TOOL_VERSION": "1.2"})
    out = execute(
        first.command, cwd=tmp_path / "w1", env=first.environment(env), log_path=tmp_path / "log1"
    )
    assert out.status == "ok"
    exported = steps.exported_env(first.set_env, tmp_path / "w1", [f"{prefix}TOOL_*", "+PATH"])
    assert exported == {
        f"{prefix}TOOL_VERSION": "1.2",
        f"{prefix}TOOL_BIN": f"{tmp_path / 'w1'}/bin/tool",
        "+PATH": f"{tmp_path / 'w1'}/bin",
    }
    second = _prepare(fmt, {}, app, tmp_path / "w2", dep_env=exported)
    out = execute(
        second.command, cwd=tmp_path / "w2", env=second.environment(env), log_path=tmp_path / "log2"
    )
    assert out.log_tail.splitlines() == [
        f"tool={tmp_path / 'w1'}/bin/tool unrelated=unset",
        f"path={tmp_path / 'w1'}/bin",
        f"me={app}",
    ]


def test_user_env_wins_over_dependency_output(tmp_path):
    app = _script(tmp_path / "app", "echo $CM_X\n")
    prepared = _prepare(
        "cm", {}, app, tmp_path / "w", dep_env={"CM_X": "dep"}, user_env={"CM_X": "user"}
    )
    assert prepared.set_env["CM_X"] == "user"


def test_script_without_run_sh_only_passes_env_on(tmp_path):
    (tmp_path / "meta-only").mkdir()
    prepared = _prepare("cm", {}, tmp_path / "meta-only", tmp_path / "w", step_env={"CM_A": "1"})
    assert prepared.command is None
    assert steps.exported_env(prepared.set_env, tmp_path / "w", ["CM_A"]) == {"CM_A": "1"}


def test_script_with_customize_py_needs_the_cm_engine(tmp_path):
    folder = _script(tmp_path / "get-x", "true\n", customize=True)
    with pytest.raises(RunFailed, match="get-x: needs the CM automation engine.*cm run script"):
        steps.check_runnable("cm", "get-x", folder)
    with pytest.raises(RunFailed, match="needs the CM automation engine.*mlcr"):
        steps.check_runnable("mlc", "get-x", folder)


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
        workflow.check_meta({"alias": "a", "run": "echo {k}"}, "w/ckg.yaml")
    with pytest.raises(InvalidInput, match="grid names z, not in params"):
        workflow.check_meta(
            {"alias": "a", "run": "echo {k}", "params": {"k": 1}, "grid": {"z": [1]}}, "f"
        )
    warnings = workflow.check_meta({"alias": "a", "run": "true", "colour": 1}, "f")
    assert warnings == ["f: unknown key 'colour'"]


def test_grid_expands_lists_of_products_in_order():
    grid = [{"model": ["a", "b"], "C": [1, 2]}, {"model": "knn"}]
    assert list(workflow.expand_grid(grid)) == [
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
