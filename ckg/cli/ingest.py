"""``ckg ingest``, ``ckg find``, ``ckg show``, ``ckg deps``: artifacts in, and looked up.

``find`` runs on every look-up, so nothing here imports rich or the ingest pipeline at
module level: only the command that needs them pays for them.
"""

import json
import sys

import typer

from ckg.cli.app import app, open_graph, print_rows
from ckg.cli.mlc import say_choice

SOURCE_HELP = "Where several artifacts match: the one of this source (name, location, uid start)."


@app.command("ingest")
def ingest(
    sources: list[str] = typer.Argument(
        ..., help="Git URL or repo, archive, folder, or a results file."
    ),
    ref: str = typer.Option(None, "--ref", help="Git branch, tag or commit."),
    name: str = typer.Option(None, "--name", help="A name for the source."),
    fmt: str = typer.Option(
        "auto", "--format", help="auto, cm, mlc, ck, ckg, generic, notebook or container."
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail (nothing written) on warnings."),
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON."),
) -> None:
    """Ingest artifacts from Git repositories, archives or folders into the graph.

    A folder written by `ckg export` brings in its runs instead; a results file (Papers
    with Code JSON, MLPerf cm-result.json, a results table) its results, as
    `ckg results import` does.

    Example: ckg ingest https://github.com/mlcommons/cm4mlops --ref main --name cm4mlops
    """
    from ckg.core.errors import UsageError
    from ckg.ingest import StrictFailure

    if name and len(sources) > 1:
        raise UsageError("--name names one source: give one SOURCE with it")
    summaries = []
    with open_graph() as kg:
        for source in sources:
            with _Bar(enabled=not as_json and sys.stderr.isatty()) as bar:
                try:
                    summary = kg.ingest(
                        source, ref=ref, name=name, fmt=fmt, strict=strict, progress=bar.update
                    )
                except StrictFailure as exc:
                    _print_warnings(exc.summary)
                    raise
            summaries.append(summary)
    if as_json:
        print(json.dumps([s.as_dict() for s in summaries], indent=2, default=str))
        return
    for summary in summaries:
        if summary.runs_imported is not None:  # a `ckg export` folder
            print("\n".join(summary.runs_imported.lines()))
        else:
            _print_summary(summary)


@app.command("find")
def find(
    tags: str = typer.Option("", "--tags", "-t", help="a,b,-c,_variation (CM's rules)."),
    kind: str = typer.Option(None, "--kind", "-k", help="Only this kind (script, soft, ...)."),
    source: str = typer.Option(
        None, "--source", help="Only artifacts of this source (name, location, uid start)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Find artifacts by tags: all plain tags, none of the -tags, variations declared.

    Example: ckg find --tags get,python3 --kind script --source mlperf-automations

    --source takes a source as --source of ckg show, deps and run does: its --name, its
    location (a Git URL, a path) or the last part of it, as ckg find's column shows it, or
    the start of its uid; a name no ingested source has is refused, naming those there are.
    """
    with open_graph() as kg:
        rows = kg.find(tags, kind, source=source)
        listed = as_json or as_csv
        held = rows or listed or kg.holds_artifacts()
    if listed:
        print_rows(rows, as_json=as_json, as_csv=as_csv)
        return
    # Plain aligned text: a rich table would cost more to import than the look-up itself.
    if not held:
        print(
            "(no artifacts match: the graph holds none yet; ckg ingest a repository, archive "
            "or folder, e.g. ckg ingest https://github.com/mlcommons/mlperf-automations)"
        )
        return
    if not rows:
        where = (f" of kind {kind!r}" if kind else "") + (f" from {source!r}" if source else "")
        print(f"(no artifacts match {tags!r}{where})")
        return
    width = max(len(r["alias"] or "") for r in rows)
    kinds = max(len(r["kind"] or "") for r in rows)
    sources = max(len(_source(r)) for r in rows)
    for r in rows:
        print(
            f"{r['alias'] or '':<{width}}  {r['uid']}  {r['kind'] or '':<{kinds}}  "
            f"{_source(r):<{sources}}  {','.join(r['tags'] or [])}"
        )


def _source(row: dict) -> str:
    """Where an artifact came from, in a word (:func:`ckg.graph.lookup.source_label`)."""
    from ckg.graph.lookup import source_label

    return source_label(row) or "-"


@app.command("show")
def show(
    alias_or_uid: str = typer.Argument(..., help="Artifact alias, uid or tags."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    source: str = typer.Option(None, "--source", help=SOURCE_HELP),
) -> None:
    """Show an artifact: meta, dependencies (resolved and not), variations, source and commit;
    or a run (``run-...``): what produced it and every value it measured.

    Example: ckg show get-python3
    """
    if alias_or_uid.startswith("run-"):
        from ckg.cli.runs import print_run

        print_run(alias_or_uid, as_json)
        return
    from ckg.mlc.guards import describe

    with open_graph() as kg:
        info = kg.show(alias_or_uid, source=source or "")
    say_choice(alias_or_uid, info["choice"], "showing")
    if as_json:
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return
    a, src = info["artifact"], info["source"] or {}
    print(f"{a.get('alias')}  ({a.get('kind')}, {a.get('format')})  uid {a.get('uid')}")
    print(f"tags:    {','.join(a.get('tags') or [])}")
    print(f"path:    {a.get('path')}")
    complete = "" if src.get("complete") else "  (INCOMPLETE: re-run ckg ingest)"
    print(f"source:  {src.get('location')} [{src.get('kind')}] {src.get('name') or ''}{complete}")
    if src.get("commit"):
        print(f"commit:  {src['commit']}")
    if info["variations"]:
        print("variations:")
        print_rows(
            [
                {k: v.get(k) for k in ("name", "group", "is_default", "base")}
                for v in info["variations"]
            ]
        )
    # Tags with a space after each comma and guards in words, so that both wrap at words.
    if info["dependencies"]:
        print("dependencies:")
        print_rows(
            [
                {
                    "kind": d["kind"],
                    "variation": d["via_variation"],
                    "tags": ", ".join(d["tags"] or []),
                    "target": d["target_alias"],
                    "matches": d["matches"],
                    "guard": describe(d["guard"]),
                }
                for d in info["dependencies"]
            ],
            important=("kind", "tags", "target", "guard"),
            limit=0,
        )
    if info["unresolved"]:
        print("unresolved (missing):")
        print_rows(
            [
                {
                    "kind": u.get("kind"),
                    "variation": u.get("via_variation"),
                    "tags": ", ".join(u.get("tags") or []),
                    "guard": describe(u.get("guard")),
                }
                for u in info["unresolved"]
            ],
            important=("kind", "tags", "guard"),
            limit=0,
        )
    print(f"used by: {len(info['used_by'])} artifact(s)")
    print("meta:")
    print(json.dumps(a.get("meta"), indent=2, ensure_ascii=False))


@app.command("deps")
def deps(
    alias_or_uid: str = typer.Argument(..., help="Artifact alias, uid or tags."),
    depth: int = typer.Option(None, "--depth", "-d", help="Levels to show (all by default)."),
    reverse: bool = typer.Option(False, "--reverse", "-r", help="Show what depends on it."),
    as_json: bool = typer.Option(False, "--json", help="Print the tree as JSON."),
    source: str = typer.Option(None, "--source", help=SOURCE_HELP),
) -> None:
    """Print the dependency tree of an artifact, or of its dependents with --reverse.

    Example: ckg deps app-image-classification-onnx-py --depth 2
    """
    with open_graph() as kg:
        tree = kg.deps(alias_or_uid, depth=depth, reverse=reverse, source=source or "")
    say_choice(alias_or_uid, tree["choice"], "showing")
    if as_json:
        print(json.dumps(tree, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.tree import Tree

    top = Tree(f"[bold]{tree['alias']}[/] ({tree['kind']})")
    _grow(top, tree["children"])
    Console().print(top)


def _grow(branch, children: list[dict]) -> None:
    from rich.markup import escape

    for child in children:
        vias = child["via"]
        notes = sorted({_via(v) for v in vias} - {""})
        if child["status"] == "missing":
            label = f"[red]missing[/] tags {escape(child['alias'])}"
        else:
            label = f"{escape(child['alias'] or '')} ({child['kind']})"
            if child["status"] == "ambiguous":
                label += " [yellow]ambiguous[/]"
        if notes:
            label += f" [dim]{escape('; '.join(notes))}[/]"
        if child.get("repeat"):
            label += " [dim](see above)[/]"
        _grow(branch.add(label), child["children"])


def _via(edge: dict) -> str:
    parts = []
    if edge.get("kind") and edge["kind"] != "deps":
        parts.append(edge["kind"])
    if edge.get("via_variation"):
        parts.append(f"_{edge['via_variation']}")
    if edge.get("guard"):
        parts.append(f"if {edge['guard']}")
    return " ".join(parts)


class _Bar:
    """A rich progress display with one bar per stage (files, artifacts, edges)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tasks: dict[str, int] = {}
        self.progress = None

    def __enter__(self) -> "_Bar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _print_summary(summary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary.location}", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("source", f"{summary.uid} [{summary.kind}] {summary.name}".strip()),
        ("commit", summary.commit or "-"),
        (
            "files / meta files / parsed",
            f"{summary.files} / {summary.meta_files} / {summary.parsed}",
        ),
        ("artifacts", str(summary.artifacts)),
        (
            "  new / changed / removed / unchanged",
            f"{summary.new} / {summary.changed} / {summary.removed} / {summary.unchanged}",
        ),
        ("dependency edges", str(summary.edges)),
        ("unresolved: missing / ambiguous", f"{summary.missing} / {summary.ambiguous}"),
        ("resolved for other sources", str(summary.reresolved)),
        ("uids already held elsewhere (renamed)", str(summary.renamed)),
        ("warnings", str(len(summary.warnings))),
    ]
    if summary.implements:
        rows.append(("papers implemented (IMPLEMENTS added)", str(summary.implements)))
    if summary.results:
        rows.append(("published results read", str(summary.results)))
    rows += [
        ("seconds", f"{summary.seconds:.2f}" + ("" if summary.wrote else " (nothing written)")),
    ]
    for what, value in rows:
        table.add_row(what, value)
    console = Console()
    console.print(table)
    _print_warnings(summary)
    shown = summary.unresolved[:20]
    for item in shown:
        more = f" -> {', '.join(item['candidates'])}" if item["candidates"] else ""
        print(f"  {item['status']:<9} {item['alias']}: tags {','.join(item['tags'] or [])}{more}")
    if len(summary.unresolved) > len(shown):
        print(f"  ... and {len(summary.unresolved) - len(shown)} more (--json lists all)")


def _print_warnings(summary) -> None:
    """Warnings go to stderr, beside the progress bar: stdout holds what was ingested."""
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
