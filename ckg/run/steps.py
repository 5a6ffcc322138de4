"""Turn one planned ``ckg`` workflow step into a command and an environment, and read back
what it exports.

A ``ckg`` workflow (:mod:`ckg.formats.ckgyaml`) runs its ``run`` template filled with the
step's parameters, in the run's working folder, with the planner's env, what its
dependencies exported and ``--env``. After a step succeeds, ``tmp-run-env.out`` in its
working folder (``KEY=VALUE`` lines; ``+KEY=VALUE`` prepends to a path list) is read and,
with the step's own env, filtered by its ``new_env_keys`` patterns into what its
dependants receive.

A Jupyter notebook (format ``notebook``) runs as ``python -m ckg.run.notebook`` (see
:mod:`ckg.run.notebook`) with the step's parameters injected; the executed notebook is kept
in the run's folder and its path recorded on the ``Run`` (``executed_notebook``).

CM and MLC scripts do not run through here: :mod:`ckg.run.scripts` runs them with
MLCFlow's semantics (customize.py hooks, ``tmp-run.sh``, cache).
"""

import fnmatch
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core.errors import RunFailed, require_extra

ENV_OUT = "tmp-run-env.out"
RUNNABLE = ("ckg", "cm", "mlc", "notebook")
#: Formats run by :mod:`ckg.run.scripts`, and the prefix of their env keys.
SCRIPT_FORMATS = ("cm", "mlc")
PREFIX = {"cm": "CM_", "mlc": "MLC_"}


@dataclass(slots=True)
class Prepared:
    """A step ready to execute: ``command`` (None when there is nothing to execute), the
    variables ckg sets on top of the inherited environment, the timeout, and properties the
    step's ``Run`` records beside the usual ones (``executed_notebook``)."""

    command: str | None
    set_env: dict[str, str]
    timeout_s: float | None
    run_props: dict[str, str] = field(default_factory=dict)

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """The child's full environment: ``base`` with :attr:`set_env` applied."""
        return apply_env(base, self.set_env)


def check_runnable(fmt: str, alias: str, artifact_dir: Path) -> None:
    """Raise RunFailed unless ckg can run an artifact of ``fmt`` stored in ``artifact_dir``.

    Raises
    ------
    RunFailed
        For a format ckg does not run, or a missing folder.
    """
    if fmt == "container":
        raise RunFailed(
            f"{alias}: a container image or Dockerfile is not run on the host; "
            f"`ckg plan {alias}` prints the docker commands that run it"
        )
    if fmt not in RUNNABLE:
        raise RunFailed(
            f"{alias}: ckg runs ckg.yaml workflows, CM/MLC scripts and Jupyter notebooks, "
            f"not {fmt!r}"
        )
    if not artifact_dir.is_dir():
        raise RunFailed(f"{alias}: artifact folder {artifact_dir} is missing")


def prepare(
    fmt: str,
    meta: dict,
    *,
    step_env: dict,
    params: dict,
    dep_env: dict,
    user_env: dict,
    artifact_dir: Path,
    workdir: Path,
) -> Prepared:
    """The command and environment of one step.

    Parameters
    ----------
    fmt : str
        ``ckg`` or ``notebook`` (scripts run through :mod:`ckg.run.scripts`).
    meta : dict
        The artifact's meta.
    step_env : dict
        The planner's environment for the step (defaults, env, variations, ``--env``).
    params : dict
        Parameters of the workflow (defaults filled in); of a notebook, only those to inject.
    dep_env : dict
        What the step's dependencies exported.
    user_env : dict
        ``--env`` values; they win over everything.

    Examples
    --------
    >>> p = prepare("ckg", {"run": "echo {n}", "params": {"n": 1}}, step_env={}, params={},
    ...             dep_env={}, user_env={}, artifact_dir=Path("/a"), workdir=Path("/w"))
    >>> p.command
    'echo 1'
    """
    if fmt not in ("ckg", "notebook"):
        raise RunFailed(f"{fmt} scripts run through ckg.run.scripts, not as workflow steps")
    set_env = {k: _text(v, k) for k, v in {**step_env, **dep_env}.items()}
    if fmt == "notebook":
        return _notebook(meta, params, set_env, user_env, artifact_dir, workdir)
    set_env.update({k: _text(v) for k, v in (meta.get("env") or {}).items()})
    values = {**(meta.get("params") or {}), **params}
    values.update(python=sys.executable, artifact_dir=str(artifact_dir), workdir=str(workdir))
    # Here: ckg.yaml's reader loads the YAML and TOML parsers, which a script run never uses.
    from ckg.formats.ckgyaml import render

    command = render(meta["run"], values)
    set_env.update(user_env)
    timeout = meta.get("timeout")
    return Prepared(command, set_env, float(timeout) if timeout else None)


def _notebook(meta, params, set_env, user_env, artifact_dir: Path, workdir: Path) -> Prepared:
    """A notebook step: ``python -m ckg.run.notebook`` with only the given parameters
    injected (the notebook's own cell holds the defaults)."""
    from ckg.run.notebook import EXECUTED

    require_extra("notebooks", "nbclient", "ipykernel", what=f"running {meta.get('file')}")

    if meta.get("language") not in ("python", ""):
        raise RunFailed(
            f"{meta.get('file')}: ckg runs Python notebooks; this one's kernel is "
            f"{meta.get('kernel', {}).get('name') or meta.get('language')}"
        )
    executed = workdir / EXECUTED
    command = shlex.join([
        sys.executable, "-m", "ckg.run.notebook", str(artifact_dir / meta["file"]),
        "--out", str(executed), "--params", json.dumps(params, sort_keys=True),
    ])
    set_env.update(user_env)
    return Prepared(command, set_env, None, {"executed_notebook": str(executed)})


def exported_env(static_env: dict, workdir: Path, new_env_keys: list[str]) -> dict[str, str]:
    """What a finished step hands to its dependants.

    ``static_env`` is what the step was given; ``tmp-run-env.out`` adds to it; only keys
    matching a ``new_env_keys`` pattern are kept (``+KEY`` entries are path lists).

    >>> exported_env({"CM_A": "1", "OTHER": "2"}, Path("/nonexistent"), ["CM_*"])
    {'CM_A': '1'}
    """
    env = dict(static_env)
    env.update(read_env_out(workdir / ENV_OUT))
    patterns = [p for p in new_env_keys or [] if isinstance(p, str) and "<<<" not in p]
    return {
        key: value
        for key, value in env.items()
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    }


def read_env_out(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``tmp-run-env.out`` (missing file: empty).

    Surrounding quotes of a value are removed, as a shell would; a repeated ``+KEY`` line
    adds to that path list.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    env: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        key = key.strip()
        if line.startswith("export "):
            key = key[len("export ") :].strip()
        if not sep or not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key.startswith("+") and key in env:
            value = os.pathsep.join([env[key], value])
        env[key] = value
    return env


def apply_env(base: dict[str, str], updates: dict[str, str]) -> dict[str, str]:
    """``base`` updated by ``updates``; a ``+KEY`` entry is prepended to the path list KEY.

    >>> apply_env({"PATH": "/bin"}, {"+PATH": "/opt/x/bin", "A": "1"})
    {'PATH': '/opt/x/bin:/bin', 'A': '1'}
    """
    env = dict(base)
    for key, value in updates.items():
        if key.startswith("+"):
            name = key[1:]
            parts = [p for p in value.split(os.pathsep) if p]
            old = [p for p in env.get(name, "").split(os.pathsep) if p and p not in parts]
            env[name] = os.pathsep.join(parts + old)
        else:
            env[key] = value
    return env


def _text(value, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        # The planner keeps ``+KEY`` path lists as lists; CM joins other lists with commas.
        return (os.pathsep if key.startswith("+") else ",").join(str(v) for v in value)
    return "" if value is None else str(value)
