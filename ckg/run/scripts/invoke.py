"""Run one MLC/CM script invocation for the runner: from the cache here, or in a worker.

The scripts come from the graph: every script of the sources the plan touches, saved as
an index file under ``CKG_HOME/scripts-index`` keyed by those sources' digests, so that
a later run reads one file instead of querying the graph. :func:`invoke` first asks an
:class:`~ckg.run.scripts.engine.Engine` that may only use the cache: a run whose every
step is cached finishes in this process, with nothing spawned. Anything else runs in a
worker process (:mod:`ckg.run.scripts.worker`) through :func:`ckg.run.execute.execute`
(own process group, timeout, CPU time and peak memory of the whole tree): a fork of this
process, whose modules the worker then need not import again, while it runs no other
thread; else a new interpreter (``python -m ckg.run.scripts.worker JOB``). The steps it
reports come back through a file, and a worker that dies leaves its last started step
failed with the exit code and the log's tail.
"""

import hashlib
import json
import os
import stat
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ckg.core.redact import seal
from ckg.core.resolve import place
from ckg.graph.scripts import repo_metas, script_rows, source_stamps
from ckg.run.execute import Outcome, can_fork, execute, read_tail
from ckg.run.scripts.cache import ScriptCache
from ckg.run.scripts.engine import Engine, NeedsExecution, ScriptFailed
from ckg.run.scripts.index import Script, load_index, save_index

STEPS_FILE = "ckg-steps.jsonl"
#: The worker's variable that holds the secrets its job file has placeholders for.
SECRETS_VARIABLE = "CKG_JOB_SECRETS"
INDEX_FORMAT = 5  # raised when the index file's layout changes


@dataclass(slots=True)
class Invocation:
    """What one invocation did: its status, outputs and every step."""

    status: str  # ok, failed, timeout
    error: str = ""
    new_env: dict = field(default_factory=dict)
    new_state: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    outcome: Outcome | None = None  # the worker's, when one ran
    wall_s: float = 0.0
    in_worker: bool = False


def index_file(store, home: Path, roots: dict[str, str]) -> Path:
    """The index of every script in the sources ``roots`` (source uid -> local root),
    written once per content of those sources."""
    sources = sorted(roots)
    stamp = [
        (r["uid"], r["digest"], r["ingested_at"], roots[r["uid"]])
        for r in source_stamps(store, sources)
    ]
    stamp.append(INDEX_FORMAT)
    key = hashlib.sha256(json.dumps(stamp, default=str).encode()).hexdigest()[:24]
    path = Path(home) / "scripts-index" / f"{key}.json"
    if path.is_file():
        return path
    prefixes = {}
    for row in repo_metas(store, sources):
        meta = _json(row["meta"])
        prefixes[row["source_uid"]] = str(meta.get("prefix", "") or "")
    scripts = []
    for row in script_rows(store, sources):
        root = roots[row["source_uid"]]
        scripts.append(Script.from_dict({
            "uid": row["uid"], "alias": row["alias"], "tags": row["tags"],
            "meta": _json(row["meta"]), "path": str(Path(root) / (row["path"] or "")),
            "repo_path": root, "repo_prefix": prefixes.get(row["source_uid"], ""),
            "source_uid": row["source_uid"], "format": row["format"],
            "source": row["location"] or "", "source_name": row["name"] or "",
            "place": place(row["location"] or "", row["path"] or ""),
        }))
    save_index(path, scripts)
    return path


def invoke(
    index: Path,
    job_input: dict,
    *,
    home: Path,
    workdir: Path,
    log_path: Path,
    prefer: str = "",
    use_cache: bool = True,
    renew: bool = False,
    timeout_s: float | None = None,
    prefix: str = "MLC_",
    env: dict | None = None,
    guarded: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
) -> Invocation:
    """Run the script ``job_input['tags']`` selects, with its dependencies.

    ``job_input`` is MLCFlow's run input (``tags``, ``env``, input flags, ...); ``env`` the
    environment of a worker process (this one's by default). ``renew`` runs cached scripts
    again and replaces their entries. A script of a repository whose root is in ``guarded``
    runs only if its folders are the user's alone (:class:`ckg.run.trust.Ownership`).
    ``secrets`` (:func:`ckg.core.redact.secret_values` of the input and environment) never reach
    the worker's files or its log in clear.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    job_input = dict(job_input)
    job_input["env"] = dict(job_input.get("env") or {})
    engine_class = engine_for(prefix)
    if engine_class.USER_RUN_DIR:
        job_input["env"].setdefault(prefix + "USER_RUN_DIR", os.getcwd())
    cache = ScriptCache(Path(home) / "cache" / "scripts")
    started = time.perf_counter()
    engine = engine_class(
        load_index(index, prefer=prefer),
        cache,
        workdir=workdir,
        log_path=log_path,
        execute=False,
        use_cache=use_cache,
        prefix=prefix,
    )
    try:
        if renew:
            raise NeedsExecution("--renew")
        result = engine.run(json.loads(json.dumps(job_input)))
    except NeedsExecution:
        return _in_worker(
            index,
            job_input,
            home=home,
            workdir=workdir,
            log_path=log_path,
            prefer=prefer,
            use_cache=use_cache,
            renew=renew,
            timeout_s=timeout_s,
            prefix=prefix,
            env=env,
            guarded=guarded,
            secrets=secrets,
        )
    except ScriptFailed as exc:
        return Invocation(
            "failed",
            str(exc),
            steps=[asdict(s) for s in engine.steps],
            wall_s=time.perf_counter() - started,
        )
    return Invocation(
        "ok",
        new_env=result["new_env"],
        new_state=result["new_state"],
        steps=[asdict(s) for s in engine.steps],
        wall_s=time.perf_counter() - started,
    )


def engine_for(prefix: str) -> type[Engine]:
    """The engine of scripts whose env keys start with ``prefix``: CM's rules for ``CM_``
    (:class:`~ckg.run.scripts.cm.CMEngine`), else MLCFlow's."""
    if prefix == "CM_":
        from ckg.run.scripts.cm import CMEngine

        return CMEngine
    return Engine


def _in_worker(
    index, job_input, *, home, workdir, log_path, prefer, use_cache, renew, timeout_s, prefix, env,
    guarded, secrets,
) -> Invocation:
    steps_path = workdir / STEPS_FILE
    steps_path.unlink(missing_ok=True)
    job = {
        "index": str(index),
        "prefer": prefer,
        "input": job_input,
        "home": str(home),
        "cache": str(Path(home) / "cache" / "scripts"),
        "workdir": str(workdir),
        "log": str(log_path),
        "steps": str(steps_path),
        "use_cache": use_cache,
        "renew": renew,
        "prefix": prefix,
        "timeout_s": timeout_s,
        "guarded": list(guarded),
    }
    job_path = workdir / "ckg-job.json"
    # The secrets travel in the worker's environment, readable by this user alone.
    job_path.write_text(seal(json.dumps(job, default=str), secrets))
    child_env = dict(env if env is not None else os.environ)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env[SECRETS_VARIABLE] = json.dumps(secrets)
    stdin = sys.stdin.fileno() if can_answer(sys.stdin) else None
    outcome = execute(
        _forked_worker(str(job_path)) if can_fork() else
        [sys.executable, "-m", "ckg.run.scripts.worker", str(job_path)],
        stdin=stdin,
        cwd=workdir,
        env=child_env,
        log_path=log_path,
        timeout_s=timeout_s,
        secrets=secrets,
    )
    steps, final = read_steps(steps_path)
    result = Invocation("ok", outcome=outcome, wall_s=outcome.wall_s, in_worker=True, steps=steps)
    if final.get("event") == "done":
        result.new_env = final.get("new_env") or {}
        result.new_state = final.get("new_state") or {}
        return result
    result.status = outcome.status if outcome.status in ("timeout", "interrupted") else "failed"
    result.error = final.get("error") or _died(outcome)
    for step in steps:
        if step.get("status") == "running":
            step["status"] = result.status
            step["error"] = step.get("error") or result.error
            step["log_tail"] = read_tail(log_path)
    return result


def _forked_worker(job_path: str):
    """The worker's main as :func:`ckg.run.execute.execute` runs it in a fork of this
    process, whose modules (the engine's, loaded for the cache lookup) it then need not
    import again. It sees what ``python -m ckg.run.scripts.worker JOB`` would: that
    ``argv``, and its working folder first on ``sys.path``."""
    from ckg.run.scripts import worker  # here, before the fork: the child imports nothing

    def main() -> int:
        sys.argv = [worker.__file__, job_path]
        sys.path.insert(0, os.getcwd())
        return worker.main(sys.argv)

    return main


def can_answer(stream) -> bool:
    """Whether ``stream`` (a file or a descriptor) can answer a script's questions: a
    terminal or a pipe, as under ``mlcr``; ``/dev/null``, a file or no stream cannot."""
    try:
        fd = stream if isinstance(stream, int) else stream.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):
        return False
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def read_steps(path: Path) -> tuple[list[dict], dict]:
    """The steps of a worker's steps file (last state of each) and its final event."""
    steps: dict[int, dict] = {}
    final: dict = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a dying worker
        if event.get("event") == "step":
            steps[event["id"]] = {k: v for k, v in event.items() if k != "event"}
        else:
            final = event
    return [steps[k] for k in sorted(steps)], final


def _died(outcome: Outcome) -> str:
    if outcome.status == "timeout":
        return "the script run timed out; its process group was killed"
    if outcome.exit_code < 0:
        return f"the script worker was killed by signal {-outcome.exit_code}"
    return f"the script worker exited with code {outcome.exit_code} before finishing"


def _json(text) -> dict:
    if isinstance(text, dict):
        return text
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
