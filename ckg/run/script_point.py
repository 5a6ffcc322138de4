"""One grid point of an MLC or CM script target, run with MLCFlow's semantics
(:mod:`ckg.run.scripts`), measured, and recorded as one ``Run`` per step the script engine
ran, with the ``CacheEntry`` nodes of the cache entries made or reused."""

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ckg.core import redact
from ckg.core.records import Edge, Node, Records
from ckg.run import record, steps
from ckg.run.execute import Outcome
from ckg.run.measure import canonical_metrics, result_metrics
from ckg.run.points import LOG_NAME, Command, Measured, Report, RunResult, clear_outputs, result_of


class ScriptPoint:
    """Runs grid points of an MLC or CM script target with MLCFlow's semantics
    (:mod:`ckg.run.scripts`), and records each step the script engine ran as a ``Run``.

    Parameters
    ----------
    command : Command
    store : GraphStore
        Where the scripts' index is read from.
    plan : ckg.plan.Plan
        The target's plan: its scripts' sources are where the engine looks first.
    target : ckg.plan.Step
        The plan's target step.
    target_text : str
        The target as the user named it: its ``_name`` tags are variations.
    """

    def __init__(self, command: Command, store, plan, target, target_text: str):
        from ckg.run.scripts.invoke import index_file

        self.command = command
        self.store = store
        self.target = target
        checkouts = command.checkouts
        scripts = [s for s in plan.steps if s.format in steps.SCRIPT_FORMATS]
        roots = {s.source_uid: checkouts.root(s) for s in scripts}
        self.index = index_file(store, command.home, roots)
        # A hook may run a script the plan does not hold: the worker checks its folder too.
        self.guarded = (
            ()
            if command.options.trust
            else tuple(
                sorted(
                    {
                        checkouts.root(s)
                        for s in scripts
                        if checkouts.info(s.uid).get("source_kind") == "dir"
                    }
                )
            )
        )
        self.wanted = [w[1:] for w in target_text.replace(",", " ").split() if w.startswith("_")]
        self.wanted += list(command.options.variations)

    def run(self, point: dict, report: Report) -> RunResult:
        """Run the target at ``point`` (measured ``repeat`` times after ``warmup``) and
        record the steps of its last execution."""
        from ckg.run.scripts.invoke import invoke

        command, target, options = self.command, self.target, self.command.options
        job_input = {
            **options.inputs,
            "artifact": target.uid,
            "tags": ",".join("_" + v for v in self.wanted),
            "env": {k: str(v) for k, v in {**command.global_env, **point}.items()},
        }
        secrets = redact.combine(
            command.ambient, redact.secret_values(job_input["env"], options.inputs)
        )
        run_uid = command.target_uid()
        workdir = command.home / "runs" / run_uid
        warmup = command.warmup()
        measured = Measured()
        results = []
        for index_ in range(warmup + options.repeat):
            clear_outputs(workdir)
            mark = command.meter.start()
            times = os.times()
            result = invoke(
                self.index,
                job_input,
                home=command.home,
                workdir=workdir,
                log_path=workdir / LOG_NAME,
                prefer=target.source_uid,
                use_cache=not options.no_cache,
                renew=options.renew,
                timeout_s=options.timeout_s,
                prefix=steps.PREFIX[target.format],
                guarded=self.guarded,
                secrets=secrets,
            )
            if result.outcome is None:  # served here from the cache: this process's CPU
                done = os.times()
                result.outcome = Outcome(
                    "ok" if result.status == "ok" else "failed",
                    0,
                    result.wall_s,
                    done.user - times.user,
                    done.system - times.system,
                    0,
                    "",
                    os.getpid(),
                )
            cpu = result.outcome.user_s + result.outcome.system_s
            energy = command.meter.stop(mark, cpu_s=cpu)
            if index_ >= warmup or result.status != "ok":
                results.append(result)
                measured.outcomes.append(result.outcome)
                measured.energies.append(energy)
                if result.status == "ok" and result.steps:
                    top = result.steps[0]
                    found = result_metrics(
                        Path(top.get("workdir") or workdir), top.get("log_tail", "")
                    )
                    measured.reported.append(canonical_metrics(found) if found else {})
            if result.status != "ok":
                break
        last = results[-1]
        step_runs = self._record(last, run_uid, point, measured, workdir, report, secrets)
        report.cached_steps += sum(1 for st in last.steps if st.get("cached"))
        report.dependency_runs += sum(1 for st in last.steps[1:] if st.get("executed"))
        top = last.steps[0] if last.steps else {}
        return result_of(
            run_uid,
            point,
            measured.figures(),
            status=last.status,
            exit_code=0
            if last.status == "ok"
            else (last.outcome.exit_code if last.outcome and last.outcome.exit_code else 1),
            workdir=str(workdir),
            log_tail=top.get("log_tail", ""),
            new_env=last.new_env,
            new_state=last.new_state,
            steps=step_runs,
            error=last.error,
        )

    def _record(
        self,
        result,
        run_uid,
        point,
        measured: Measured,
        workdir: Path,
        report: Report,
        secrets: tuple[str, ...],
    ) -> list[dict]:
        """One Run per step (the first is the target's, with the measurements), and a
        CacheEntry node for each cache entry made or reused; what each step did, as shown."""
        from ckg.run.scripts.index import load_index

        command = self.command
        # As invoke loaded it (the same key): read and built once per command, not twice.
        scripts = load_index(self.index, prefer=self.target.source_uid)

        uids = {
            st["id"]: (run_uid if k == 0 else "run-" + uuid.uuid4().hex)
            for k, st in enumerate(result.steps)
        }
        records = Records()
        shown = []
        used = sorted({st["uid"] for st in result.steps[1:]})
        for k, st in enumerate(result.steps):
            status = st.get("status") or result.status
            executed = st.get("executed") or []
            props = {
                "uid": uids[st["id"]],
                "status": "ok" if status in ("cached", "skipped") else status,
                "cached": bool(st.get("cached")),
                "skipped": status == "skipped",
                "executed": executed,
                "nothing_to_execute": not executed and not st.get("cached"),
                "started_at": st.get("started_at", ""),
                "duration_s": float(st.get("wall_s") or 0.0),
                "exit_code": 0 if status in ("ok", "cached", "skipped") else 1,
                "step": " ".join([st["alias"], *("_" + v for v in st.get("variations") or [])]),
                "tags": st.get("tags", ""),
                "params": json.dumps(
                    redact.mask_env(point if k == 0 else {}, secrets), sort_keys=True
                ),
                "variations": list(st.get("variations") or []),
                "version": st.get("version", ""),
                "new_env": redact.env_text(st.get("new_env") or {}, secrets),
                "new_state": json.dumps(st.get("new_state") or {}, sort_keys=True, default=str),
                "error": st.get("error", ""),
                "workdir": st.get("workdir") or str(workdir),
                "log_tail": st.get("log_tail", ""),
                "cache_entry": st.get("cache_entry", ""),
                "env_full": redact.env_text(st.get("env") or {}, secrets),
            }
            script = scripts.scripts.get(st["uid"])
            if script is not None:
                props.update(command.provenance.of(st["uid"], script.repo_path, Path(script.path)))
            step_records = record.run_records(
                props,
                artifact_uid=st["uid"],
                figures=measured.figures() if k == 0 else [],
                platform=command.platform,
                experiment=command.experiment,
                used=used if k == 0 else [],
            )
            if k == 0:  # the target's Run: what it reproduces, written before MEASURED
                step_records.edges[:0] = command.reproduces.edges(props["uid"], point)
            command.provenance.link_packages(step_records, props["uid"])
            if st.get("parent") in uids:
                step_records.edges.append(
                    Edge("CALLED", "Run", uids[st["parent"]], "Run", uids[st["id"]])
                )
            entry = st.get("cache_entry")
            if entry:
                node = cache_node(entry, st)
                step_records.nodes.append(node)
                step_records.edges += [
                    Edge("OF", "CacheEntry", node.key, "Artifact", st["uid"]),
                    Edge("ON", "CacheEntry", node.key, "Platform", command.platform.key),
                    Edge(
                        "REUSED" if st.get("cached") else "MADE",
                        "Run",
                        uids[st["id"]],
                        "CacheEntry",
                        node.key,
                    ),
                ]
            records.extend(step_records)
            shown.append(
                {
                    "run": uids[st["id"]],
                    "step": props["step"],
                    "status": status,
                    "cached": props["cached"],
                    "executed": executed,
                    "duration_s": props["duration_s"],
                    "error": props["error"],
                }
            )
        if records.nodes:
            command.write(records, report, secrets)
        gone = [name for st in result.steps for name in st.get("removed_entries") or []]
        if gone and command.recorder.store_ok:
            self.store.delete_nodes("CacheEntry", gone)
        return shown


def cache_node(path: str, step: dict) -> Node:
    """The ``CacheEntry`` node of the script cache entry at ``path``, made or reused by the
    script engine's ``step``."""
    from ckg.run.scripts.cache import META

    try:
        meta = json.loads((Path(path) / META).read_text())
    except (OSError, ValueError):
        meta = {}
    return Node(
        "CacheEntry",
        Path(path).name,
        {
            "path": path,
            "tags": [str(t) for t in meta.get("tags") or []],
            "script_alias": step.get("alias", ""),
            "version": str(meta.get("version") or ""),
            "created_at": datetime.fromtimestamp(meta.get("created", 0), UTC).isoformat(),
        },
    )
