"""``ckg runs`` and ``ckg diff``: recorded runs, and what differs between two of them."""

import json
from os.path import commonprefix

import typer

from ckg.cli.app import app, metric_columns, open_graph, params_text, print_rows
from ckg.core.values import format_number, human_unit


@app.command("runs")
def runs(
    experiment: str = typer.Option(
        None,
        "--experiment",
        help="Runs of one experiment, its uid (or start); or of every "
        "experiment with this name, each a new one of ckg run TARGET.",
    ),
    artifact: str = typer.Option(None, "--artifact", help="Runs of one artifact."),
    limit: int = typer.Option(50, "--limit", help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (every field, uncut)."),
    ids: bool = typer.Option(
        False,
        "--ids",
        help="Print only the runs' uids, one a line, "
        "for another command: ckg show $(ckg runs --ids --limit 1).",
    ),
) -> None:
    """Recorded runs, newest first, with the commit and artifact digest they ran, and the
    experiment that holds each.

    Example: ckg runs --experiment sklearn-digits --limit 10

    A name selects every experiment so named (ckg run TARGET without --experiment makes a
    new one named as the target each time): their runs are listed together, the column
    experiment telling them apart by the start of its uid, which --experiment takes too.
    """
    with open_graph() as kg:
        rows = kg.runs(experiment, artifact, limit)
    if ids:
        print("\n".join(row["run"] for row in rows))
        return
    if as_json:
        print_rows(rows, as_json=True)
        return
    units = _metric_units(rows)
    if as_csv:  # every metric a column of raw values, its unit in the header
        print_rows([_with_metrics(row, {m: f"{m} ({u})" if u else m for m, u in units.items()})
                    for row in rows], as_csv=True)  # fmt: skip
        return
    # Short forms a person reads; ckg show and ckg diff take a run by the start of its uid.
    shown = []
    for row in rows:
        row["params"] = params_text(row["params"])
        row["run"] = row["run"][:16]
        row["started_at"] = (row["started_at"] or "")[:16].replace("T", " ")
        row["commit"] = (row["commit"] or "")[:12]
        row["digest"] = (row["digest"] or "")[:12]
        row["platform"] = (row["platform"] or "")[:20]
        row["experiment"] = (row["experiment"] or "")[:16]
        shown.append(_with_metrics(row, {m: m for m in units}, after="params"))
    # A column no run fills (no commit: a folder's runs) takes no room from the others.
    empty = [c for c in ("commit", "digest", "platform", "experiment", "experiment_name")
             if not any(row.get(c) for row in shown)]  # fmt: skip
    shown = [{k: v for k, v in row.items() if k not in empty} for row in shown]
    filtered = experiment or artifact
    hint = "no runs match" if filtered else "no runs recorded yet: ckg demo, or ckg run TARGET"
    # Runs of several experiments of one name: the experiment's uid is what tells them apart.
    several = len({row.get("experiment") for row in shown}) > 1
    optional = tuple(group for group in _OPTIONAL if not (several and group == ("experiment",)))
    print_rows(shown, title="runs", label="params", units=units, optional=optional,
               empty_hint=hint)  # fmt: skip


#: Left out first while the table is wider than the terminal: CPU times and memory, then
#: where and from what each run ran, runtime, energy, experiment and start, and last the
#: artifact and status; the run, its parameters and what it reported stay.
_OPTIONAL = (("cpu_user_time", "cpu_system_time"), ("memory",), ("platform",), ("digest",),
             ("commit",), ("runtime",), ("energy",), ("experiment",), ("started_at",),
             ("experiment_name",), ("artifact",), ("status",))  # fmt: skip


def _metric_units(rows: list[dict]) -> dict[str, str]:
    """Every metric the runs measured and its unit: those they reported, by name, then ckg's
    own (:func:`ckg.cli.app.metric_columns`).

    >>> _metric_units([{"measurements": [{"metric": "runtime", "unit": "s"},
    ...                                   {"metric": "accuracy", "unit": "%"}]}])
    {'accuracy': '%', 'runtime': 's'}
    """
    units = {m["metric"]: m["unit"] or "" for row in rows for m in row["measurements"]}
    return {m: units[m] for m in metric_columns(units)}


def _with_metrics(row: dict, columns: dict[str, str], after: str | None = None) -> dict:
    """``row`` without its measurements, each metric's value in its column (``columns``:
    metric -> column name), after the column ``after`` (else at the end)."""
    values = {m["metric"]: m["value"] for m in row["measurements"]}
    metrics = {column: values.get(metric) for metric, column in columns.items()}
    out = {}
    for key, value in row.items():
        if key != "measurements":
            out[key] = value
        if key == after:
            out |= metrics
    return out if after in row else out | metrics


@app.command("diff")
def diff(
    run_a: str = typer.Argument(..., help="A run uid."),
    run_b: str = typer.Argument(..., help="Another run uid."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What differs between two runs: commit, files, env, packages, platform, parameters.

    Example: ckg diff run-1f2e... run-9c3d...
    """
    with open_graph() as kg:
        if as_json:
            print(json.dumps(kg.diff_runs(run_a, run_b), indent=2, default=str))
            return
        rows = kg.run_differences(run_a, run_b)
    if not rows:
        print("no difference in what produced them")
        return
    fields: dict[str, list[str]] = {}
    for row in rows:
        change = " -> ".join(_shown(row["a"], row["b"]))
        fields.setdefault(row["field"], []).append(
            change if row["key"] is None else f"{row['key']}: {change}"
        )
    for field, changes in fields.items():
        more = f" (+{len(changes) - 8} more: --json)" if len(changes) > 8 else ""
        print(f"{field}: " + "; ".join(changes[:8]) + more)


def _shown(a, b, most: int = 40) -> tuple[str, str]:
    """Two values of ``ckg diff`` as Python writes them (``(none)`` where a run lacks one),
    each cut to ``most`` characters around where they first differ: from the start of the
    word before it (``--model bayes``), an ellipsis marking each cut, so that a long command
    that differs at its end shows that end.

    >>> _shown("knn", None)
    ("'knn'", '(none)')
    >>> _shown("python train.py --data digits --model bayes",
    ...        "python train.py --data digits --model forest", most=24)
    ("…--model bayes'", "…--model forest'")
    >>> _shown("x" * 50, "y", most=8)
    ("'xxxxxx…", "'y'")
    """
    texts = ["(none)" if value is None else repr(value) for value in (a, b)]
    if all(len(text) <= most for text in texts):
        return texts[0], texts[1]
    same = len(commonprefix(texts))
    word = texts[0].rfind(" ", 0, texts[0].rfind(" ", 0, same)) + 1
    start = max(word, same - most // 2) if same > most // 2 else 0
    cut = []
    for text in texts:
        text = ("…" if start else "") + text[start:]
        cut.append(text if len(text) <= most else text[: most - 1] + "…")
    return cut[0], cut[1]


def print_run(uid: str, as_json: bool) -> None:
    """``ckg show RUN``."""
    with open_graph() as kg:
        info = kg.show_run(uid)
    if as_json:
        print(json.dumps(info, indent=2, default=str, ensure_ascii=False))
        return
    run = info["run"]
    print(
        f"run {run.get('uid')}  {run.get('status')}  {run.get('started_at')}  "
        f"{info['artifact']['alias']} ({info['artifact']['uid']})"
    )
    for label, value in (
        (
            "experiment",
            info["experiment_uid"]
            and f"{info['experiment'] or ''} ({info['experiment_uid']})".lstrip(),
        ),
        ("step", run.get("step")),
        ("command", run.get("command")),
        ("params", run.get("params")),
        ("commit", _commit(run)),
        (
            "artifact",
            f"digest {run.get('artifact_digest')}, {len(run.get('artifact_files') or {})} files",
        ),
        ("platform", info["platform"].get("uid")),
        ("packages", f"{len(info['packages'])} ({info['package_set']})"),
    ):
        if value:
            print(f"{label + ':':<12}{value}")
    if info["measurements"]:
        print_rows([_measured(m) for m in info["measurements"]], title="measurements",
                   label="values", limit=0)  # fmt: skip
    if info["steps"]:
        print_rows(info["steps"], title="steps", label="step")


def _measured(m: dict) -> dict:
    """A measurement as a table row, in the prefixed unit that suits its size (µs, MB); the
    raw figures are in ``--json``."""
    values = [v for v in m["values"] or [] if v is not None]
    factor, unit = human_unit(values or [m["value"]], m["unit"] or "")
    return {
        "metric": m["metric"],
        "value": format_number(m["value"] / factor if m["value"] is not None else None),
        "unit": unit,
        "n": m["n"],
        "values": ", ".join(format_number(v / factor) for v in values),
    }


def _commit(run: dict) -> str:
    if not run.get("source_commit"):
        return ""
    return run["source_commit"] + (" (with uncommitted changes)" if run.get("source_dirty") else "")
