"""Turn one planned step into a command and an environment, and read back what it exports.

Two formats run on the host:

- ``ckg`` workflows (:mod:`ckg.run.workflow`): the ``run`` template filled with the step's
  parameters.
- CM and MLC scripts whose work is in ``run.sh``: ``bash run.sh`` in the run's working
  folder, with the environment CM would give it (the planner's ``default_env``, ``env`` and
  variation env, then what dependencies exported, then ``--env``), and the script folder in
  ``CM_TMP_CURRENT_SCRIPT_PATH`` / ``MLC_TMP_CURRENT_SCRIPT_PATH``. A script with a
  ``customize.py`` needs CM's automation engine to run its Python hooks, so it is refused
  before anything starts. A script with neither file only passes its env on.

After a step succeeds, ``tmp-run-env.out`` in its working folder (``KEY=VALUE`` lines;
``+KEY=VALUE`` prepends to a path list) is read and, with the step's own env, filtered by
its ``new_env_keys`` patterns (``CM_OPENSSL_*``, ``+LD_LIBRARY_PATH``) into what its
dependants receive.
"""

import fnmatch
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ckg.errors import RunFailed
from ckg.run import workflow

ENV_OUT = "tmp-run-env.out"
RUNNABLE = ("ckg", "cm", "mlc")
_PREFIX = {"cm": "CM_", "mlc": "MLC_"}


@dataclass(slots=True)
class Prepared:
    """A step ready to execute: ``command`` (None when there is nothing to execute), the
    variables ckg sets on top of the inherited environment, and the timeout."""

    command: str | None
    set_env: dict[str, str]
    timeout_s: float | None

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """The child's full environment: ``base`` with :attr:`set_env` applied."""
        return apply_env(base, self.set_env)


def check_runnable(fmt: str, alias: str, artifact_dir: Path) -> None:
    """Raise RunFailed unless ckg can run an artifact of ``fmt`` stored in ``artifact_dir``.

    Raises
    ------
    RunFailed
        For a format ckg does not run, a missing folder, or a CM/MLC script with a
        ``customize.py`` (it needs the CM automation engine).
    """
    if fmt not in RUNNABLE:
        raise RunFailed(f"{alias}: ckg runs ckg.yaml workflows and CM/MLC scripts, not {fmt!r}")
    if not artifact_dir.is_dir():
        raise RunFailed(f"{alias}: artifact folder {artifact_dir} is missing")
    if fmt in _PREFIX and (artifact_dir / "customize.py").is_file():
        engine = "cm run script" if fmt == "cm" else "mlcr"
        raise RunFailed(
            f"{alias}: needs the CM automation engine (it has customize.py); "
            f"run it with `{engine}` instead"
        )


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
        ``ckg``, ``cm`` or ``mlc``.
    meta : dict
        The artifact's meta.
    step_env : dict
        The planner's environment for the step (defaults, env, variations, ``--env``).
    params : dict
        Parameters of a ``ckg`` workflow (defaults filled in); for CM/MLC, env values.
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
    set_env = {k: _text(v, k) for k, v in {**step_env, **dep_env}.items()}
    if fmt == "ckg":
        set_env.update({k: _text(v) for k, v in (meta.get("env") or {}).items()})
        values = {**(meta.get("params") or {}), **params}
        values.update(python=sys.executable, artifact_dir=str(artifact_dir), workdir=str(workdir))
        command = workflow.render(meta["run"], values)
    else:
        set_env.update({k: _text(v) for k, v in params.items()})
        prefix = _PREFIX[fmt]
        set_env[f"{prefix}TMP_CURRENT_SCRIPT_PATH"] = str(artifact_dir)
        set_env[f"{prefix}TMP_CURRENT_PATH"] = str(workdir)
        script = artifact_dir / "run.sh"
        command = f"{_shell()} {shlex.quote(str(script))}" if script.is_file() else None
    set_env.update(user_env)
    timeout = meta.get("timeout")
    return Prepared(command, set_env, float(timeout) if timeout else None)


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


def _shell() -> str:
    return "bash" if shutil.which("bash") else "sh"


def _text(value, key: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        # The planner keeps ``+KEY`` path lists as lists; CM joins other lists with commas.
        return (os.pathsep if key.startswith("+") else ",").join(str(v) for v in value)
    return "" if value is None else str(value)
