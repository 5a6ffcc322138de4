"""``ckg reproduce PAPER``: run what each result of a paper is configured to reproduce with,
and compare reported with reproduced (:func:`reproduce`)."""

import json
from dataclasses import dataclass, field

from ckg.core.errors import NotFound, did_you_mean
from ckg.formats.reproduces import parse_block
from ckg.graph import execution
from ckg.run.reproduces import resolve


@dataclass(slots=True)
class Reproduction:
    """What :func:`reproduce` did: one row per reported result (and run), each
    :class:`ckg.run.Report`, and the artifacts that could not be run (alias -> why)."""

    paper: str
    title: str
    rows: list[dict] = field(default_factory=list)
    reports: list = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def paper_key(store, paper: str) -> tuple[str, str]:
    """The uid and title of the Paper that ``paper`` (a link, arXiv id, DOI or uid) names.

    Raises
    ------
    NotFound
        No such paper in the graph; close uids are named.
    """
    from ckg.formats.papers import paper_uid

    uid = paper_uid(paper) or paper.strip()
    found = execution.paper(store, uid)
    if found:
        return found["uid"], found["title"] or ""
    hint = did_you_mean(uid, execution.paper_uids(store))
    raise NotFound(f"no paper {uid!r} in the graph{hint}")


def reproduce(
    store, home, paper: str, *, repeat: int = 1, trust: bool = False, timeout_s: float | None = None
) -> Reproduction:
    """Run, for each result of ``paper``, the implementing artifact configured to reproduce
    it, and compare: one row per reported result and run of this command.

    A result is run when an artifact that ``IMPLEMENTS`` the paper can be run (a ``ckg.yaml``
    workflow, a CM/MLC script) and its ``reproduces:`` block has an entry naming the result:
    the entry's ``params`` are the grid point. Each artifact runs once, over the points its
    entries give. The other results are rows whose ``status`` says why they were not run.

    An artifact whose block is malformed or ambiguous, or that cannot be run (an untrusted
    source, a failed dependency), is named in ``errors``; the others still run.

    Parameters
    ----------
    store : GraphStore
        Where the paper, its results and the implementing artifacts are, and where the runs
        are recorded.
    home : Path
        ckg's home, as :func:`ckg.run.run` takes it.
    paper : str
        A link, arXiv id, DOI or uid of the paper (:func:`paper_key`).

    Raises
    ------
    NotFound
        No such paper.
    UsageError
        ``repeat`` below 1.
    """
    from ckg.core import config
    from ckg.core.errors import CkgError, UsageError
    from ckg.graph import named
    from ckg.run.runner import Options, run
    from ckg.run.steps import RUNNABLE

    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")
    uid, title = paper_key(store, paper)
    results = execution.paper_results(store, uid)
    artifacts = execution.implementing(store, uid)
    runnable = [a for a in artifacts if a["format"] in RUNNABLE]
    points: dict[str, list[dict]] = {}  # artifact uid -> grid points, in order
    planned: dict[str, list[tuple[str, dict]]] = {}  # result uid -> (artifact, point)
    errors = {}  # artifact uid -> why it could not be run
    for artifact in runnable:
        try:
            configured = _configured(store, artifact)
        except CkgError as exc:
            errors[artifact["uid"]] = str(exc)
            continue
        for result, point in configured:
            planned.setdefault(result, []).append((artifact["uid"], point))
            if point not in points.setdefault(artifact["uid"], []):
                points[artifact["uid"]].append(point)
    outcome = Reproduction(uid, title)
    runs: dict[str, list] = {}
    for artifact_uid, grid in points.items():
        try:
            options = Options(grid=grid, repeat=repeat, trust=trust, timeout_s=timeout_s)
            with config.private_files():
                report = run(store, home, artifact_uid, options)
        except CkgError as exc:  # the other artifacts still run; the error is reported
            errors[artifact_uid] = str(exc)
            continue
        outcome.reports.append(report)
        runs[artifact_uid] = report.runs
    mine = {run.uid for report in outcome.reports for run in report.runs}
    compared: dict[str, list[dict]] = {}
    for row in named.run(store, "paper-vs-reproduced", {"paper": uid}):
        if row["run"] in mine:
            compared.setdefault(row["result"], []).append({**row, "status": "reproduced"})
    aliases = {a["uid"]: a["alias"] for a in artifacts}
    outcome.errors = {aliases[uid]: why for uid, why in errors.items()}
    for result in results:
        rows = compared.get(result["uid"])
        if rows:
            outcome.rows += rows
            continue
        why = _why_not(
            result, artifacts, runnable, planned.get(result["uid"], []), errors, runs, aliases
        )
        outcome.rows.append(_bare_row(result, why))
    return outcome


def _configured(store, artifact: dict) -> list[tuple[str, dict]]:
    """(Result uid, grid point) for each result the artifact's ``reproduces:`` block names."""
    meta = json.loads(artifact["meta"] or "{}")
    found = []
    for index, entry in enumerate(parse_block(meta.get("reproduces"), artifact["alias"])):
        where = f"{artifact['alias']}: reproduces[{index}]"
        found += [
            (uid, dict(entry.params)) for uid in resolve(store, entry, strict=False, where=where)
        ]
    return found


def _why_not(result, artifacts, runnable, planned, errors, runs, aliases) -> str:
    """Why a result has no reproduced value from this command."""
    if not artifacts:
        return "no implementing artifact (ckg link ARTIFACT PAPER)"
    if not runnable:
        formats = ", ".join(sorted({a["format"] or "?" for a in artifacts}))
        return f"no runnable implementing artifact ({formats})"
    if not planned:
        names = ", ".join(a["alias"] for a in runnable if a["uid"] not in errors)
        if not names:
            return "not run: " + "; ".join(errors[a["uid"]] for a in runnable)
        return f"no configuration: no reproduces: entry of {names} names it"
    for artifact_uid, point in planned:
        if artifact_uid in errors:
            return f"not run: {errors[artifact_uid]}"
        for run in runs.get(artifact_uid, []):
            if run.params == point and run.status != "ok":
                return f"{aliases[artifact_uid]} run {run.status} (exit {run.exit_code})"
    return f"its run measured no {result['metric']}"


def _bare_row(result: dict, status: str) -> dict:
    return {
        "task": result["task"],
        "dataset": result["dataset"],
        "model": result["model"],
        "metric": result["metric"],
        "reported": result["value"],
        "unit": result["unit"],
        "reproduced": None,
        "stdev": None,
        "n": None,
        "reproduced_unit": None,
        "ratio": None,
        "platform": None,
        "run": None,
        "artifact": None,
        "how": None,
        "started_at": None,
        "result": result["uid"],
        "status": status,
    }
