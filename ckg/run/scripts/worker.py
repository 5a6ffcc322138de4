"""The worker process that executes MLC/CM scripts: ``python -m ckg.run.scripts.worker JOB``.

``JOB`` is a JSON file written by :func:`ckg.run.scripts.invoke.invoke`: the index file,
the tags and inputs, the env, the working folder, the log, the cache folder. Each step
start and end is appended to the job's ``steps`` file as one JSON line, flushed at once,
so that the parent knows which step a worker that died was in; the last line is
``{"event": "done", ...}`` or ``{"event": "failed", ...}``. Hooks and native scripts print
to this process's stdout and stderr, which the parent sends to the run's log.

The job file holds placeholders for the secrets of the input (:func:`ckg.core.redact.seal`),
whose values come in this process's environment; the steps file holds them masked.
"""

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from ckg.core.redact import mask_value, unseal
from ckg.run.scripts.cache import ScriptCache
from ckg.run.scripts.engine import ScriptFailed
from ckg.run.scripts.hooks import Hooks, answer_prompts, quiet_mlc
from ckg.run.scripts.index import load_index
from ckg.run.scripts.invoke import SECRETS_VARIABLE, can_answer, engine_for

#: The folder of ckg's home that holds the bytecode of the scripts' Python.
PYCACHE_DIR = "pycache"


def main(argv: list[str]) -> int:
    # Taken out of the environment: the steps' processes get the values, not the list.
    secrets = tuple(json.loads(os.environ.pop(SECRETS_VARIABLE, "[]")))
    job = json.loads(unseal(Path(argv[1]).read_text(), secrets))
    # The hooks and automation code imported from a source's copy keep their bytecode in
    # ckg's home, never in a __pycache__ beside them (a Git checkout that gained files is
    # one git must check and clean again); compiled once, a customize.py then loads from it.
    if sys.pycache_prefix is None:  # else the user's (PYTHONPYCACHEPREFIX), outside it too
        sys.pycache_prefix = str(Path(job["home"]) / PYCACHE_DIR)
    out = open(job["steps"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def emit(event: dict) -> None:
        out.write(json.dumps(mask_value(event, secrets), default=str) + "\n")
        out.flush()

    def on_step(report) -> None:
        emit({"event": "step", **asdict(report)})

    prefix = job.get("prefix", "MLC_")
    engine = engine_for(prefix)(
        load_index(job["index"], prefer=job.get("prefer", "")),
        ScriptCache(Path(job["cache"])),
        workdir=Path(job["workdir"]),
        log_path=Path(job["log"]),
        execute=True,
        use_cache=job.get("use_cache", True),
        renew=job.get("renew", False),
        on_step=on_step,
        prefix=prefix,
        timeout_s=job.get("timeout_s"),
    )
    engine.hooks = Hooks()
    quiet_mlc(Path(job["home"]))
    answer_prompts()
    if can_answer(0):
        engine.stdin = 0  # native scripts read what is left of it, as under mlcr
    if getattr(engine, "cmind", None) is not None:
        _as_cm(engine)
    engine.guard = _guard(set(job.get("guarded") or ()))
    try:
        result = engine.run(job["input"])
    except ScriptFailed as exc:
        emit({"event": "failed", "error": str(exc), "alias": exc.alias})
        return 1
    emit(
        {
            "event": "done",
            "new_env": result["new_env"],
            "new_state": result["new_state"],
            "skipped": bool(result.get("skipped")),
        }
    )
    return 0


def _as_cm(engine) -> None:
    """Make this process CM's for the scripts' own Python: cmind's module-level ``access``
    (``import cmind; cmind.access(...)``) answered by the engine's ``automation.cmind``
    rather than by a CM of its own over ``~/CM``, and the root logger at INFO as CM's
    script automation sets it (``automation.cmind.logger`` writes through it)."""
    import logging

    import cmind.core

    cmind.core.cm = engine.cmind
    # force: a worker forked from a process that had logging set up (pytest's capture) writes
    # to its own stderr, the log, as a new interpreter's would.
    logging.basicConfig(level=logging.INFO, force=True)


def _guard(roots: set[str]):
    """The engine's check before a script of a repository in ``roots`` (a folder source
    run without --trust) executes anything: its folders must be the user's alone."""
    from ckg.run import trust

    ownership = trust.Ownership()
    refusals: dict[str, str | None] = {}

    def refusal(script) -> str | None:
        if script.repo_path not in roots:
            return None
        if script.path not in refusals:
            why = ownership.foreign_path(
                *trust.step_folders(script.format, script.path, script.repo_path)
            )
            refusals[script.path] = why and trust.folder_refusal(
                script.alias, script.repo_path, why
            )
        return refusals[script.path]

    return refusal


if __name__ == "__main__":
    sys.exit(main(sys.argv))
