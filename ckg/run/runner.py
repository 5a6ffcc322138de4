"""Run a target on this host: plan, execute each step, measure, journal, record.

For each point of the parameter grid the target's plan is executed in order. Dependency
steps (and post-dependencies) run once and are cached by a key of the artifact's digest,
variations, environment, parameters, platform and their own dependencies' keys; the target
runs ``warmup`` unmeasured times and then ``repeat`` measured times. Every executed step
becomes a ``Run`` with its ``Measurement`` nodes, journalled to disk first (see
:mod:`ckg.run.journal`) and then written to the graph. If the graph cannot be written, the
run goes on and its records wait in the journal for ``ckg db recover``.
"""

import hashlib
import json
import os
import shutil
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ckg import redact
from ckg.errors import RunFailed, StoreUnavailable, UsageError
from ckg.records import Node
from ckg.run import journal, provenance, record, reproduces, steps, trust
from ckg.run.execute import Outcome, execute
from ckg.run.measure import EnergyMeter, Figure, canonical_metrics, result_metrics
from ckg.run.platform import detect_cached, platform_node
from importers.ckgyaml import expand_grid

LOG_NAME = "ckg-run.log"
#: Formats of artifacts a step needs without executing them: Python packages, images.
REQUIREMENTS = ("generic", "container")
#: Step outputs removed before each repeat, so that a stale file never counts twice.
_OUTPUTS = (*("cm-output.json", "cm-result.json", "ckg-result.json"), steps.ENV_OUT)

ARTIFACT_INFO = """
UNWIND $uids AS u
MATCH (a:Artifact {uid: u})
OPTIONAL MATCH (s:Source)-[:CONTAINS]->(a)
RETURN a.uid AS uid, a.digest AS digest, a.format AS format, a.path AS path,
       s.uid AS source_uid, s.kind AS source_kind, s.location AS location,
       s.ref AS ref, s.digest AS source_digest
"""


@dataclass(slots=True)
class Options:
    """How to run: see :func:`run` for each field."""

    variations: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    grid: dict | list = field(default_factory=dict)
    repeat: int = 1
    warmup: int | None = None
    no_cache: bool = False
    renew: bool = False
    trust: bool = False
    dry_run: bool = False
    timeout_s: float | None = None
    inputs: dict = field(default_factory=dict)
    reproduces: tuple[str, ...] = ()
    in_container: str = ""
    run_uids: tuple[str, ...] = ()
    experiment: str | dict | None = None
    folders_trusted: bool = True
    source_roots: dict | None = None


@dataclass(slots=True)
class RunResult:
    """One executed target run: its grid point and what was measured."""

    uid: str
    params: dict
    status: str
    exit_code: int
    metrics: dict[str, float]
    units: dict[str, str]
    workdir: str
    log_tail: str
    new_env: dict = field(default_factory=dict)
    new_state: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    error: str = ""


@dataclass(slots=True)
class Report:
    """What ``ckg run`` did: the experiment, each target run, cached and unrecorded steps."""

    experiment: str
    target: str
    runs: list[RunResult] = field(default_factory=list)
    dependency_runs: int = 0
    cached_steps: int = 0
    unrecorded: int = 0
    store_error: str = ""
    dry_run: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status != "ok"]


def run(kg, target: str, options: Options | None = None, progress=None) -> Report:
    """Run ``target`` over the grid of ``options`` and record every run in ``kg``.

    Parameters
    ----------
    kg : ckg.api.KnowledgeGraph
    target : str
        Uid, alias or tags of the artifact (as :func:`ckg.plan.plan` takes them).
    options : Options
        ``variations`` and ``env`` go to the planner; ``grid`` maps parameter names to value
        lists (a ``ckg.yaml`` parameter, or an env key of a CM/MLC script); ``repeat``
        measured executions after ``warmup`` unmeasured ones (default 1 when repeating);
        ``no_cache`` neither reads nor writes the step cache; ``renew`` re-runs cached steps
        and refreshes the cache; ``trust`` runs artifacts of untrusted sources this once;
        ``dry_run`` returns the commands and environments instead of running them;
        ``reproduces`` Result uids or specs every target run reproduces, beside the meta's
        ``reproduces:`` block (:mod:`ckg.reproduce`); ``in_container`` an image reference in
        which each workflow or notebook step runs, through docker or podman
        (:func:`ckg.run.container.wrap`); ``experiment`` the Experiment the runs join: the
        one with that uid or (only it) that name, else a new one of that name (default: a
        new one named as the target; see :func:`experiment_node`). A cluster worker
        (:mod:`ckg.cluster`) sets ``run_uids``, the uids of the target runs in grid order,
        and ``experiment`` to the ``uid`` and ``props`` of their Experiment, both fixed when
        the grid was submitted so that a re-executed task writes the same nodes; and
        ``folders_trusted`` False, since a folder named by a submitter is not this host's
        owner's code; and ``source_roots``, one dict for all its runs, so that a Git commit or
        an archive is fetched once per worker rather than once per grid point.
    progress : callable, optional
        Called as ``progress(done, total, result)``: once with ``(0, points, None)`` before
        the first grid point runs, then after each with the :class:`RunResult` it gave.

    Returns
    -------
    Report

    Raises
    ------
    UsageError
        Unknown target, undeclared variation, grid over an unknown parameter, repeat < 1,
        a ``reproduces`` uid or spec that names no result (before anything runs).
    RunFailed
        An untrusted source, a script that needs CM's engine, a failed dependency.
    InvalidInput
        An ``in_container`` image that a container engine would read as an option.
    """
    options = options or Options()
    if options.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {options.repeat}")
    if options.in_container:
        from ckg.run.container import check_image, find_engine

        # Before anything is planned or runs: one clear line for a bad image or no engine.
        check_image(options.in_container)
        if not options.dry_run:
            find_engine()
    return _Runner(kg, target, options, progress).go()


class _Runner:
    def __init__(self, kg, target: str, options: Options, progress=None):
        self.kg = kg
        self.progress = progress or (lambda done, total, result: None)
        self.home = Path(kg.home)
        self.target = target
        self.options = options
        self.user_env = dict(options.env)
        self.global_env = {k: v for k, v in options.env.items() if ":" not in k}
        self.plans: dict[str, object] = {}
        self.infos: dict[str, dict] = {}
        self.cache_keys: dict[str, str] = {}
        self.exports: dict[str, dict] = {}
        self.store_ok = True
        # (location, ref, digest) -> local copy; a cluster worker shares one across its runs
        self.roots: dict[tuple, str] = {} if options.source_roots is None else options.source_roots
        self.provenances: dict[str, dict] = {}
        self.source_states: dict[str, dict] = {}
        self.package_set = None
        self.fixed_uids = list(options.run_uids)
        self.ambient = redact.ambient()  # once: the same in every step's environment
        self.checked: set[str] = set()  # steps whose folders and meta passed the checks
        self.ownership = trust.Ownership()

    def go(self) -> Report:
        from ckg.plan import plan as make_plan

        first = self._plan_for(make_plan, self.user_env)
        target_step = _target_step(first)
        fmt = target_step.format
        points = self._grid_points(target_step)
        # What each target run reproduces, resolved before anything runs.
        self.reproduces = reproduces.for_target(self.kg.store, target_step,
                                                self.options.reproduces)
        self.platform = platform_node(detect_cached(self.home))
        self.experiment = self._experiment_node(target_step, points)
        report = Report(self.experiment.key, target_step.alias)
        if not self.options.dry_run:
            self.meter = EnergyMeter()
            self.progress(0, len(points), None)
        for point in points:
            if fmt == "ckg":
                plan = first
            else:
                plan = self._plan_for(make_plan, {**self.user_env, **point})
            self._preflight(plan)
            if self.options.dry_run:
                report.dry_run.extend(self._dry(plan, point))
                continue
            if fmt in steps.SCRIPT_FORMATS:
                report.runs.append(self._run_script_point(plan, point, report))
            else:
                report.runs.append(self._run_point(plan, point, report))
            self.progress(len(report.runs), len(points), report.runs[-1])
        return report

    # --- planning and checks ------------------------------------------------------

    def _plan_for(self, make_plan, env: dict):
        key = json.dumps(env, sort_keys=True)
        if key not in self.plans:
            self.plans[key] = make_plan(self.kg, self.target, self.options.variations, env)
            self._load_infos(self.plans[key])
        return self.plans[key]

    def _load_infos(self, plan) -> None:
        missing = [s.uid for s in plan.steps if s.uid not in self.infos]
        if missing:
            for row in self.kg.store.run(ARTIFACT_INFO, {"uids": missing}):
                self.infos[row["uid"]] = row

    def _grid_points(self, step) -> list[dict]:
        grid = self.options.grid
        if not grid:
            return [{}]
        known = _parameters(step)
        for point in expand_grid(grid):
            unknown = sorted(set(point) - set(known))
            if unknown:
                names = ", ".join(sorted(known)) or "none"
                raise UsageError(
                    f"--grid: {', '.join(unknown)} is not a parameter of {step.alias} "
                    f"(its parameters: {names})"
                )
        return list(expand_grid(grid))

    def _preflight(self, plan) -> None:
        allowed = trust.trusted(self.home)
        for step in _executed(plan):
            inside = step.meta.get("in_image")
            if isinstance(inside, dict):
                raise RunFailed(
                    f"{step.alias} lies inside container image {inside.get('ref') or '?'} "
                    f"at {inside.get('path')}; ckg does not run it on this host"
                )
            if self.options.in_container and step.format in steps.SCRIPT_FORMATS:
                raise RunFailed(
                    f"--in-container runs ckg.yaml workflows and notebooks, not the "
                    f"{step.format} script {step.alias}"
                )
            info = self.infos.get(step.uid, {})
            kind = info.get("source_kind")
            if kind == "dir" and not self.options.folders_trusted:
                raise RunFailed(
                    f"{step.alias} comes from the folder {info.get('location')}, which only "
                    "the host that ingested it runs: ingest it as a Git repository or an "
                    "archive to run it on a cluster"
                )
            if kind == "dir" and not self.options.trust and step.uid not in self.checked:
                why = self.ownership.foreign_path(*trust.step_folders(
                    step.format, self._artifact_dir(step), info.get("location")))
                if why:
                    raise RunFailed(trust.folder_refusal(step.alias, info.get("location"), why))
            if kind and kind != "dir" and not self.options.trust:
                why = trust.distrust(allowed.get(step.source_uid), info.get("source_digest"))
                if why:
                    raise RunFailed(
                        f"{step.alias} comes from {info.get('location')} ({kind}), {why}: "
                        f"review it, then `ckg trust {info.get('location')}` or use --trust"
                    )
                # Trust is for the content reviewed; a link's target is not part of it.
                if step.uid not in self.checked:
                    why = self.ownership.foreign_path(*trust.step_folders(
                        step.format, self._artifact_dir(step), self._root(step)))
                    if why:
                        raise RunFailed(
                            f"{step.alias} comes from {info.get('location')} ({kind}), whose "
                            f"copy leads to what is not yours alone: {why}; trust covers the "
                            "content you reviewed, not what a link reaches: use --trust to "
                            "run it all the same"
                        )
            if kind and step.uid not in self.checked:
                why = trust.meta_mismatch(self._root(step), step, self.home)
                if why:
                    # Incomplete, the source is read whole by its next ingest, not skipped
                    # as unchanged: that puts its own meta back.
                    self.kg.store.run("MATCH (s:Source {uid: $uid}) SET s.complete = false",
                                      {"uid": step.source_uid})  # fmt: skip
                    raise RunFailed(
                        f"{step.alias}: {why}; `ckg ingest {info.get('location')}` reads "
                        "the source again"
                    )
                self.checked.add(step.uid)
            steps.check_runnable(step.format, step.alias, self._artifact_dir(step))

    def _artifact_dir(self, step) -> Path:
        return Path(self._root(step)) / (step.path or "")

    def _root(self, step) -> str:
        info = self.infos.get(step.uid, {})
        if info.get("source_kind") == "dir":
            return info.get("location")
        return self._source_root(step, info)

    def _source_root(self, step, info: dict) -> str:
        """The local copy of a Git or archive source: its clone or extraction cache, which
        ingest filled; refused when the content is no longer what was ingested."""
        from importers.git import last_checkout
        from importers.sources import open_source

        if not info.get("location"):
            raise RunFailed(f"{step.alias}: no source recorded for it; ingest it again")
        key = (info["location"], info.get("ref") or "", info.get("source_digest") or "")
        if key not in self.roots:
            # One clone per location: fetching other content makes older entries stale.
            for stale in [k for k in self.roots if k[:2] == key[:2]]:
                del self.roots[stale]
            tree = open_source(info["location"], ref=key[1] or None, cache=self.home / "cache")
            if info.get("source_digest") and tree.digest != info["source_digest"]:
                raise RunFailed(
                    f"{step.alias}: {info['location']} changed since it was ingested; "
                    "ingest it again"
                )
            self.roots[key] = str(tree.root)
            kept = last_checkout(tree.root) if tree.kind == "git" else None
            if kept and kept["commit"] == tree.commit:
                # The state the checkout was just found in (or git just reported), which its
                # steps run from: no git run again for the provenance.
                self.source_states[str(tree.root)] = {
                    "source_commit": tree.commit, "source_dirty": kept["dirty"]}
        return self.roots[key]

    def _experiment_node(self, step, points: list[dict]) -> Node:
        fixed = self.options.experiment
        if isinstance(fixed, dict):  # a cluster submission's, the same in every task
            return Node("Experiment", fixed["uid"], dict(fixed["props"]))
        return experiment_node(self.kg.store, fixed, step.alias, step.uid, self.options,
                               len(points))

    # --- execution ------------------------------------------------------------------

    def _dry(self, plan, point: dict) -> list[dict]:
        shown = []
        for step in _executed(plan):
            params = point if step is _target_step(plan) else {}
            workdir = self.home / "runs" / "<run-uid>"
            if step.format in steps.SCRIPT_FORMATS:
                shown.append(_script_dry(step, params, workdir, self._artifact_dir(step)))
                continue
            prepared = self._prepare(step, params, {}, workdir)
            shown.append(
                {
                    "step": step.id,
                    "params": params,
                    "cwd": str(workdir),
                    "command": prepared.command,
                    "env": prepared.set_env,
                }
            )
        return shown

    def _prepare(self, step, params: dict, dep_env: dict, workdir: Path) -> steps.Prepared:
        prepared = steps.prepare(
            step.format,
            step.meta,
            step_env=step.env,
            params=params,
            dep_env=dep_env,
            user_env=self.global_env,
            artifact_dir=self._artifact_dir(step),
            workdir=workdir,
        )
        image = self.options.in_container
        if image and prepared.command is not None:
            from ckg.run.container import find_engine, wrap

            engine = "docker" if self.options.dry_run else find_engine()
            prepared.command = wrap(prepared.command, image, engine=engine, workdir=workdir,
                                    artifact_dir=self._artifact_dir(step),
                                    env=prepared.set_env)
        return prepared

    def _run_point(self, plan, point: dict, report: Report) -> RunResult:
        target = _target_step(plan)
        dep_env: dict = {}
        used: list[str] = []
        result = None
        for step in _executed(plan):
            if step is target:
                result = self._run_target(step, point, dep_env, used, report)
                used.append(step.uid)
                continue
            exported = self._run_dependency(step, dep_env, used, report)
            dep_env = {**dep_env, **exported}
            used.append(step.uid)
        return result

    def _run_script_point(self, plan, point: dict, report: Report) -> RunResult:
        """Run an MLC/CM script target with MLCFlow's semantics (:mod:`ckg.run.scripts`)
        and record each of its steps as a Run."""
        from ckg.run.scripts.invoke import index_file, invoke

        target = _target_step(plan)
        roots = {s.source_uid: self._root(s) for s in plan.steps
                 if s.format in steps.SCRIPT_FORMATS}
        index = index_file(self.kg.store, self.home, roots)
        # A hook may run a script the plan does not hold: the worker checks its folder too.
        guarded = () if self.options.trust else tuple(sorted(
            {self._root(s) for s in plan.steps if s.format in steps.SCRIPT_FORMATS
             and self.infos.get(s.uid, {}).get("source_kind") == "dir"}))
        prefix = steps.PREFIX[target.format]
        wanted = [w[1:] for w in self.target.replace(",", " ").split() if w.startswith("_")]
        wanted += list(self.options.variations)
        job_input = {
            **self.options.inputs,
            "artifact": target.uid,
            "tags": ",".join("_" + v for v in wanted),
            "env": {k: str(v) for k, v in {**self.global_env, **point}.items()},
        }
        secrets = redact.combine(self.ambient,
                                 redact.secret_values(job_input["env"], self.options.inputs))
        run_uid = self._target_uid()
        workdir = self.home / "runs" / run_uid
        log_path = workdir / LOG_NAME
        repeat = self.options.repeat
        warmup = self.options.warmup if self.options.warmup is not None else int(repeat > 1)
        outcomes, energies, results, reported = [], [], [], []
        for index_ in range(warmup + repeat):
            _clear_outputs(workdir)
            mark = self.meter.start()
            times = os.times()
            result = invoke(index, job_input, home=self.home, workdir=workdir,
                            log_path=log_path, prefer=target.source_uid,
                            use_cache=not self.options.no_cache, renew=self.options.renew,
                            timeout_s=self.options.timeout_s, prefix=prefix,
                            guarded=guarded, secrets=secrets)
            if result.outcome is None:  # served here from the cache: this process's CPU
                done = os.times()
                result.outcome = Outcome("ok" if result.status == "ok" else "failed", 0,
                                         result.wall_s, done.user - times.user,
                                         done.system - times.system, 0, "", os.getpid())
            cpu = result.outcome.user_s + result.outcome.system_s
            energy = self.meter.stop(mark, cpu_s=cpu)
            if index_ >= warmup or result.status != "ok":
                results.append(result)
                outcomes.append(result.outcome)
                energies.append(energy)
                if result.status == "ok" and result.steps:
                    top = result.steps[0]
                    found = result_metrics(Path(top.get("workdir") or workdir),
                                           top.get("log_tail", ""))
                    reported.append(canonical_metrics(found) if found else {})
            if result.status != "ok":
                break
        last = results[-1]
        step_runs = self._record_script_steps(last, target, run_uid, point, outcomes, energies,
                                              reported, workdir, report, index, secrets)
        report.cached_steps += sum(1 for st in last.steps if st.get("cached"))
        report.dependency_runs += sum(1 for st in last.steps[1:] if st.get("executed"))
        top = last.steps[0] if last.steps else {}
        values = {f.metric: f for f in _figures(outcomes, energies, reported) if not f.device}
        return RunResult(
            uid=run_uid,
            params=point,
            status=last.status,
            exit_code=0 if last.status == "ok" else (
                last.outcome.exit_code if last.outcome and last.outcome.exit_code else 1),
            metrics={m: statistics.median(f.values) for m, f in values.items()},
            units={m: f.unit for m, f in values.items()},
            workdir=str(workdir),
            log_tail=top.get("log_tail", ""),
            new_env=last.new_env,
            new_state=last.new_state,
            steps=step_runs,
            error=last.error,
        )

    def _record_script_steps(self, result, target, run_uid, point, outcomes, energies,
                             reported, workdir: Path, report: Report, index,
                             secrets: tuple[str, ...]) -> list[dict]:
        """One Run per step (the first is the target's, with the measurements), and a
        CacheEntry node for each cache entry made or reused."""
        from ckg.records import Edge, Records
        from ckg.run.scripts.index import load_index

        # As invoke loaded it (the same key): read and built once per command, not twice.
        scripts = load_index(index, prefer=target.source_uid)

        uids = {st["id"]: (run_uid if k == 0 else "run-" + uuid.uuid4().hex)
                for k, st in enumerate(result.steps)}
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
                "params": json.dumps(redact.mask_env(point if k == 0 else {}, secrets),
                                     sort_keys=True),
                "variations": list(st.get("variations") or []),
                "version": st.get("version", ""),
                "new_env": redact.env_text(st.get("new_env") or {}, secrets),
                "new_state": json.dumps(st.get("new_state") or {}, sort_keys=True,
                                        default=str),
                "error": st.get("error", ""),
                "workdir": st.get("workdir") or str(workdir),
                "log_tail": st.get("log_tail", ""),
                "cache_entry": st.get("cache_entry", ""),
                "env_full": redact.env_text(st.get("env") or {}, secrets),
            }
            script = scripts.scripts.get(st["uid"])
            if script is not None:
                props.update(self._provenance(st["uid"], script.repo_path, Path(script.path)))
            figures = _figures(outcomes, energies, reported) if k == 0 else []
            step_records = record.run_records(
                props, artifact_uid=st["uid"], figures=figures, platform=self.platform,
                experiment=self.experiment, used=used if k == 0 else [])
            if k == 0:  # the target's Run: what it reproduces, written before MEASURED
                step_records.edges[:0] = self.reproduces.edges(props["uid"], point)
            self._with_packages(step_records, props["uid"])
            if st.get("parent") in uids:
                step_records.edges.append(
                    Edge("CALLED", "Run", uids[st["parent"]], "Run", uids[st["id"]]))
            entry = st.get("cache_entry")
            if entry:
                node = _cache_node(entry, st)
                step_records.nodes.append(node)
                step_records.edges += [
                    Edge("OF", "CacheEntry", node.key, "Artifact", st["uid"]),
                    Edge("ON", "CacheEntry", node.key, "Platform", self.platform.key),
                    Edge("REUSED" if st.get("cached") else "MADE", "Run", uids[st["id"]],
                         "CacheEntry", node.key),
                ]
            records.extend(step_records)
            shown.append({"run": uids[st["id"]], "step": props["step"], "status": status,
                          "cached": props["cached"], "executed": executed,
                          "duration_s": props["duration_s"], "error": props["error"]})
        if records.nodes:
            self._record(records, report, secrets)
        gone = [name for st in result.steps for name in st.get("removed_entries") or []]
        if gone and self.store_ok:
            self.kg.store.run(
                "UNWIND $uids AS u MATCH (c:CacheEntry {uid: u}) DETACH DELETE c", {"uids": gone})
        return shown

    def _run_dependency(self, step, dep_env: dict, used: list[str], report: Report) -> dict:
        key = self._cache_key(step, {})
        if step.id in self.exports and self.cache_keys.get(step.id) == key:
            report.cached_steps += 1
            return self.exports[step.id]
        cached = None
        if not (self.options.no_cache or self.options.renew):
            cached = trust.cache_get(self.home, key)
        if cached and cached.get("status") == "ok":
            report.cached_steps += 1
            exported = cached["env"]
        else:
            outcome_status, exported, result = self._execute_and_record(
                step, {}, dep_env, list(used), key, repeat=1, warmup=0, report=report
            )
            report.dependency_runs += 1
            if outcome_status != "ok":
                raise RunFailed(
                    f"dependency {step.id} {outcome_status} (exit {result.exit_code}); "
                    f"log: {Path(result.workdir) / LOG_NAME}"
                )
            if not self.options.no_cache:
                trust.cache_put(
                    self.home,
                    key,
                    {"status": "ok", "env": exported, "run": result.uid, "step": step.id},
                )
        self.cache_keys[step.id] = key
        self.exports[step.id] = exported
        return exported

    def _run_target(self, step, point: dict, dep_env: dict, used: list[str], report: Report):
        key = self._cache_key(step, point)
        repeat = self.options.repeat
        warmup = self.options.warmup if self.options.warmup is not None else int(repeat > 1)
        _, _, result = self._execute_and_record(
            step, point, dep_env, list(used), key, repeat=repeat, warmup=warmup, report=report
        )
        return result

    def _execute_and_record(self, step, params, dep_env, used, key, *, repeat, warmup, report):
        run_uid = self._target_uid() if step.reason == "target" else "run-" + uuid.uuid4().hex
        workdir = self.home / "runs" / run_uid
        log_path = workdir / LOG_NAME
        prepared = self._prepare(step, params, dep_env, workdir)
        env = prepared.environment(dict(os.environ))
        secrets = redact.combine(self.ambient, redact.secret_values(prepared.set_env, params))
        timeout = self.options.timeout_s or prepared.timeout_s
        started = _now()
        outcomes: list[Outcome] = []
        energies: list[list[Figure]] = []
        reported: list[dict] = []
        status, exit_code = "ok", 0
        if prepared.command is not None:
            for index in range(warmup + repeat):
                _clear_outputs(workdir)
                mark = self.meter.start()
                outcome = execute(prepared.command, cwd=workdir, env=env, log_path=log_path,
                                  timeout_s=timeout, secrets=secrets)
                energy = self.meter.stop(mark, cpu_s=outcome.user_s + outcome.system_s)
                if outcome.status != "ok":
                    status, exit_code = outcome.status, outcome.exit_code
                    outcomes.append(outcome)
                    energies.append(energy)
                    break
                if index >= warmup:
                    outcomes.append(outcome)
                    energies.append(energy)
                    reported.append(canonical_metrics(result_metrics(workdir, outcome.log_tail)))
        else:
            workdir.mkdir(parents=True, exist_ok=True)
        exported = {}
        if status == "ok":
            exported = steps.exported_env(prepared.set_env, workdir, step.new_env_keys)
        figures = _figures(outcomes, energies, reported)
        run_props = {
            "uid": run_uid,
            "status": status,
            "started_at": started,
            "duration_s": sum(o.wall_s for o in outcomes),
            "exit_code": exit_code,
            "command": prepared.command or "",
            "params": json.dumps(redact.mask_env(params, secrets), sort_keys=True),
            "variations": list(step.variations),
            "env": redact.env_text(prepared.set_env, secrets),
            "step": step.id,
            "cache_key": key,
            "repeat": len(outcomes),
            "warmup": warmup,
            "workdir": str(workdir),
            "log_tail": outcomes[-1].log_tail if outcomes else "",
            "env_full": redact.env_text(env, secrets),
            **prepared.run_props,
            **self._provenance(step.uid, self._root(step), self._artifact_dir(step)),
        }
        records = record.run_records(
            run_props,
            artifact_uid=step.uid,
            figures=figures,
            platform=self.platform,
            experiment=self.experiment,
            used=used,
        )
        if step.reason == "target":  # what it reproduces, written before MEASURED
            records.edges[:0] = self.reproduces.edges(run_uid, params)
        self._with_packages(records, run_uid)
        self._record(records, report, secrets)
        values = {f.metric: f for f in figures if not f.device}  # per-device parts left out
        result = RunResult(
            uid=run_uid,
            params=params,
            status=status,
            exit_code=exit_code,
            metrics={m: statistics.median(f.values) for m, f in values.items()},
            units={m: f.unit for m, f in values.items()},
            workdir=str(workdir),
            log_tail=run_props["log_tail"],
        )
        return status, exported, result

    def _target_uid(self) -> str:
        """The uid of the next target run: the next of ``run_uids``, or a new one."""
        return self.fixed_uids.pop(0) if self.fixed_uids else "run-" + uuid.uuid4().hex

    def _cache_key(self, step, params: dict) -> str:
        info = self.infos.get(step.uid, {})
        # The env a caller hands down changes with every caller; only the keys the step
        # itself declares (and the user's --env) decide what it produces, as in CM's cache.
        declared = _declared_env(step.meta)
        parts = [
            info.get("digest") or "",
            step.uid,
            sorted(step.variations),
            {k: v for k, v in step.env.items() if k in declared or k in self.global_env},
            params,
            self.global_env,
            self.platform.key,
            sorted(self.cache_keys.get(a, a) for a in step.after),
        ]
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _provenance(self, uid: str, root, folder: Path) -> dict:
        """What a run of artifact ``uid`` records about its code, once per command: the
        source's Git state at run time and the manifest of the folder as executed."""
        if uid not in self.provenances:
            key = str(root)
            if key not in self.source_states:
                self.source_states[key] = provenance.source_state(root) if root else {}
            manifest = provenance.folder_manifest(folder) if folder.is_dir() else {}
            info = self.infos.get(uid, {})
            self.provenances[uid] = {
                **self.source_states[key],
                "source_digest": info.get("source_digest") or "",
                "artifact_digest": provenance.manifest_digest(manifest),
                "artifact_files": json.dumps(manifest, sort_keys=True),
            }
        return self.provenances[uid]

    def _with_packages(self, records, run_uid: str) -> None:
        """Link the run to the set of Python distributions of the interpreter that ran."""
        from ckg.records import Edge

        if self.package_set is None:
            self.package_set = provenance.package_set_node(
                provenance.installed_packages(self.home))
            records.nodes.append(self.package_set)  # written once per command: it never changes
        records.edges.append(
            Edge("WITH_PACKAGES", "Run", run_uid, "PackageSet", self.package_set.key))

    def _record(self, records, report: Report, secrets: tuple[str, ...]) -> None:
        redact.mask_records(records, secrets)
        journal.append(self.home, records)
        if not self.store_ok:
            report.unrecorded += 1
            return
        try:
            self.kg.store.write_records(records, one_transaction=True)
        except StoreUnavailable as exc:
            # Journalled already: stop trying the graph for the rest of this command.
            self.store_ok = False
            report.unrecorded += 1
            report.store_error = str(exc)


def experiment_node(store, name: str | None, alias: str, target_uid: str, options: Options,
                    points: int) -> Node:
    """The Experiment a grid of ``points`` runs of ``target_uid`` joins: the one ``name``
    names (its uid, or a name no other experiment has), whose properties stay as they are;
    else a new one with a new uid, named ``name`` or, without one, the target's ``alias``.

    Raises
    ------
    UsageError
        Several experiments are named ``name`` (each is named, to give one's uid).
    """
    from ckg.errors import NotFound
    from ckg.runs import resolve_experiment

    if name:
        try:
            return Node("Experiment", resolve_experiment(store, name, prefix=False), {})
        except NotFound:
            pass
    return Node("Experiment", "exp-" + uuid.uuid4().hex[:16],
                experiment_props(name or alias, target_uid, options, points))


def experiment_props(name: str, target_uid: str, options: Options, points: int) -> dict:
    """The properties of a new Experiment ``name`` of a grid of ``points`` runs of
    ``target_uid``."""
    return {
        "name": name,
        "target": target_uid,
        "params_grid": json.dumps(redact.mask_value(options.grid), sort_keys=True),
        "points": points,
        "variations": list(options.variations),
        "repeat": options.repeat,
        "created_at": _now(),
    }


def _script_dry(step, params: dict, workdir: Path, folder: Path) -> dict:
    """What a dry run shows of a script step: its hooks and native script, and the env the
    planner worked out (customize.py may change it when it runs)."""
    script = folder / "run.sh"
    return {
        "step": step.id,
        "params": params,
        "cwd": str(workdir),
        "command": str(script) if script.is_file() else None,
        "hooks": ["customize.py"] if (folder / "customize.py").is_file() else [],
        "env": step.env,
    }


def _cache_node(path: str, step: dict) -> Node:
    from ckg.run.scripts.cache import META

    try:
        meta = json.loads((Path(path) / META).read_text())
    except (OSError, ValueError):
        meta = {}
    return Node("CacheEntry", Path(path).name, {
        "path": path,
        "tags": [str(t) for t in meta.get("tags") or []],
        "script_alias": step.get("alias", ""),
        "version": str(meta.get("version") or ""),
        "created_at": datetime.fromtimestamp(meta.get("created", 0), UTC).isoformat(),
    })


def _executed(plan) -> list:
    """The plan's steps but the packages and images its target needs (a notebook's imports,
    an image's base): requirements of the environment, not steps ckg executes."""
    return [s for s in plan.steps if s.reason == "target" or s.format not in REQUIREMENTS]


def _target_step(plan):
    for step in plan.steps:
        if step.uid == plan.target and step.reason == "target":
            return step
    raise RunFailed(f"the plan for {plan.target} has no target step")


def _parameters(step) -> set[str]:
    """What a grid may vary: a workflow's params, a notebook's parameters, or a script's env
    keys and inputs."""
    meta = step.meta
    if step.format == "ckg":
        return set(meta.get("params") or {})
    if step.format == "notebook":  # the cell tagged "parameters"
        return set(meta.get("parameters") or {})
    names = set(meta.get("default_env") or {}) | set(meta.get("env") or {})
    names |= set((meta.get("input_mapping") or {}).values())
    return names


def _declared_env(meta: dict) -> set[str]:
    """Env keys a script's meta sets or maps inputs to, its variations' included."""
    sections = [meta, *((meta.get("variations") or {}).values())]
    keys: set[str] = set()
    for section in sections:
        if isinstance(section, dict):
            for name in ("default_env", "env"):
                keys |= set(section.get(name) or {})
    keys |= set((meta.get("input_mapping") or {}).values())
    return keys


def _figures(outcomes: list[Outcome], energies, reported: list[dict]) -> list[Figure]:
    if not outcomes:
        return []
    figures = [
        Figure("runtime", [o.wall_s for o in outcomes], "s", "wallclock"),
        Figure("cpu_user_time", [o.user_s for o in outcomes], "s", "rusage"),
        Figure("cpu_system_time", [o.system_s for o in outcomes], "s", "rusage"),
    ]
    if all(o.peak_rss_bytes for o in outcomes):  # 0: nothing was spawned to measure
        figures.append(
            Figure("memory", [float(o.peak_rss_bytes) for o in outcomes], "B", "psutil+rusage")
        )
    by_device: dict[tuple, Figure] = {}
    for per_run in energies:
        for fig in per_run:
            slot = (fig.metric, fig.device, fig.method)
            if slot in by_device:
                by_device[slot].values.extend(fig.values)
            else:
                by_device[slot] = Figure(
                    fig.metric, list(fig.values), fig.unit, fig.method, fig.device, dict(fig.extra)
                )
    figures += by_device.values()
    names: dict[str, Figure] = {}
    for metrics in reported:
        for name, (value, unit) in metrics.items():
            if name in names:
                names[name].values.append(value)
            else:
                names[name] = Figure(name, [value], unit, "reported")
    # A reported figure with the name of a measured one (runtime, memory) is kept apart.
    taken = {f.metric for f in figures}
    for name, fig in names.items():
        if name in taken:
            fig.metric = f"reported_{name}"
        figures.append(fig)
    return figures


def _clear_outputs(workdir: Path) -> None:
    for name in _OUTPUTS:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
