"""Runs moved between machines and stores: ``ckg export RUN... --to DIR``, read back by
``ckg ingest DIR``.

An export folder holds one self-contained record per run and the run's log files::

    DIR/ckg-export.json        the marker: format, version, each run and its record's file
    DIR/runs/<run>.json        the run's record
    DIR/logs/<run>/<name>      log and result files of a run's work folder, size-capped

A record holds the ``Run`` node and everything it links to: the Runs it ``CALLED`` (the steps
of an MLC or CM script, transitively); from each of those Runs every outgoing relationship and
the node at its end (the ``Artifact`` it ran and those it ``USED``, ``Platform``,
``Experiment``, ``Measurement``, ``CacheEntry``, ``PackageSet`` ...); from each
``Measurement`` and ``CacheEntry`` the same once more (``Metric``, ...). Nodes come with every
property, but alone: an artifact's source, dependencies and variations stay behind.
``IN_FRONT`` relationships are left out, since a front is computed over one graph's runs
(``ckg pareto`` computes it again in the other). ``logs`` lists each copied file with its
size, the bytes kept (the end of a file larger than the cap) and their sha256.

Importing creates the nodes the graph lacks, with the exported properties plus where they came
from (``imported_from``: the exporting graph; ``exported_at``; ``exported_with``: the ckg
version; a node imported before and exported again keeps its first origin); a node the graph
already holds is left as it is (an artifact ingested here keeps its source). Relationships
are merged, all in one transaction, and log files are copied to ``$CKG_HOME/runs/<run>/``
unless one is there already. Importing a folder twice, or into the graph it came from,
changes nothing.

Logs are read only from work folders inside the exporting home, never from a ``workdir``
elsewhere that an imported record could name.
"""

import hashlib
import json
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core.errors import InvalidInput, NotFound, UsageError
from ckg.core.records import Edge, Node, Records
from ckg.core.redact import ambient, combine, mask_bytes, mask_node, props_secrets
from ckg.core.schema import key_of
from ckg.graph.runs import called_by, resolve_run, runs_of_experiment
from ckg.transfer.encode import edge_from, edge_json, node_from, node_json, stamp

#: The file that makes a folder an export of runs.
MARKER = "ckg-export.json"
FORMAT = "ckg-export"
RECORD_FORMAT = "ckg-run-export"
VERSION = 1
#: Bytes kept of each log file; a larger one keeps its end, where the error is.
MAX_LOG_BYTES = 1 << 20
#: Files of a run's work folder that are copied: its log, the results it reported, any *.log.
#: Not tmp-run.sh, ckg-job.json and the like: they hold the whole environment.
LOG_FILES = ("ckg-run.log", "ckg-result.json", "cm-result.json", "cm-output.json")
#: Labels whose outgoing relationships are followed too: they belong to one run.
RUN_PARTS = ("Measurement", "CacheEntry")
#: Relationships left out of a record.
LEFT_OUT = ("IN_FRONT",)
#: Properties an import adds to every node it creates (see :func:`import_runs`).
PROVENANCE = ("imported_from", "exported_at", "exported_with")
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}")


@dataclass
class ExportSummary:
    """What ``ckg export`` wrote: per run its record's file, nodes, relationships and logs."""

    folder: str
    runs: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"folder": self.folder, "runs": self.runs}


@dataclass
class RunImport:
    """What importing an export folder did (``ckg ingest DIR`` on an export)."""

    folder: str
    runs: list[str] = field(default_factory=list)
    exported_from: list[str] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    relationships: int = 0
    logs: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": "runs", **self.__dict__}

    def lines(self) -> list[str]:
        created = ", ".join(f"{n} {label}" for label, n in sorted(self.created.items()))
        return [
            f"{self.folder}: {len(self.runs)} run(s) exported from "
            f"{'; '.join(self.exported_from) or '?'}",
            f"  nodes created: {created or 'none'}; already here, left as they were: {self.kept}",
            f"  relationships merged: {self.relationships}; log files copied: {self.logs}",
            *(f"  warning: {w}" for w in self.warnings),
        ]


@dataclass
class RunRecord:
    """One run's record as read back: where it is, its header, its records and logs."""

    uid: str
    path: Path
    header: dict
    records: Records
    logs: list[dict]


# --- export -------------------------------------------------------------------------------


def export_runs(
    store,
    home: Path,
    runs: list[str],
    folder: str | Path,
    *,
    experiment: str | None = None,
    max_log_bytes: int = MAX_LOG_BYTES,
) -> ExportSummary:
    """Write a record of each run, with its logs, into ``folder``.

    Parameters
    ----------
    store : GraphStore
    home : Path
        ckg's home. Logs are read only from work folders inside it (a run's ``workdir``, or
        ``home/runs/<run>`` where an imported run's logs were put): a ``workdir`` elsewhere,
        such as one an imported record names, is never read.
    runs : list of str
        Run uids, or prefixes that name one run each.
    folder : path
        Created if missing; an earlier export there gets these runs added (a run exported
        again is replaced). Any other folder that is not empty is refused.
    experiment : str, optional
        Also every top-level run of the experiments with this name or uid.
    max_log_bytes : int
        Bytes kept of each log file (its end).

    Returns
    -------
    ExportSummary

    Raises
    ------
    UsageError
        No run given, a prefix that names several runs, ``folder`` not empty and no export,
        a negative ``max_log_bytes``.
    NotFound
        A run or experiment the graph does not hold.
    """
    if max_log_bytes < 0:
        raise UsageError(f"--max-log-bytes must be 0 or more, not {max_log_bytes}")
    uids = [resolve_run(store, text) for text in runs]
    if experiment is not None:
        found = runs_of_experiment(store, experiment)
        if not found:
            raise NotFound(f"no runs of experiment {experiment!r} in the graph")
        uids += found
    uids = list(dict.fromkeys(uids))
    if not uids:
        raise UsageError("name the runs to export (RUN... or --experiment)")
    folder = Path(folder).expanduser()
    marker = _open_folder(folder)
    header = stamp(store)
    summary = ExportSummary(str(folder))
    secrets = ambient()
    for uid in uids:
        records = collect_run(store, uid)
        # The secrets of runs' environments, recorded in clear by an older ckg, mask logs too.
        masked = combine(
            secrets, *(props_secrets(n.props) for n in records.nodes if n.label == "Run")
        )
        records.nodes = [mask_node(n, masked) for n in records.nodes]
        name = _file_name(uid)
        logs = _copy_logs(records, Path(home), folder, max_log_bytes, masked)
        record = {
            "format": RECORD_FORMAT,
            "version": VERSION,
            "run": uid,
            **header,
            "nodes": [node_json(n) for n in records.nodes],
            "edges": [edge_json(e) for e in records.edges],
            "logs": logs,
        }
        _write_json(folder / "runs" / f"{name}.json", record)
        marker["runs"][uid] = f"runs/{name}.json"
        summary.runs.append(
            {
                "run": uid,
                "file": str(folder / "runs" / f"{name}.json"),
                "nodes": len(records.nodes),
                "relationships": len(records.edges),
                "logs": [log["file"] for log in logs],
            }
        )
    marker.update(header)
    _write_json(folder / MARKER, marker)
    return summary


def collect_run(store, uid: str) -> Records:
    """The nodes and relationships of run ``uid``'s record (see the module notes), in a
    stable order: the Run first, then by label and key.

    Raises
    ------
    NotFound
        The graph holds no run ``uid``.
    """
    top = store.get_node("Run", uid)
    if top is None:
        raise NotFound(f"no run {uid!r} in the graph")
    nodes: dict[tuple[str, object], Node] = {("Run", uid): _node("Run", top)}
    runs, frontier = [uid], [uid]
    while frontier:
        frontier = sorted(set(called_by(store, frontier)) - set(runs))
        runs += frontier
    edges: dict[tuple, Edge] = {}
    for label in ("Run", *RUN_PARTS):
        keys = runs if label == "Run" else sorted(k for (lab, k) in nodes if lab == label)
        for edge, node in _outgoing(store, label, keys):
            nodes.setdefault((node.label, node.key), node)
            edges[(edge.type, edge.src_label, edge.src_key, edge.dst_label, edge.dst_key)] = edge
    top_node = nodes.pop(("Run", uid))
    rest = sorted(nodes.values(), key=lambda n: (n.label != "Run", n.label, str(n.key)))
    return Records(nodes=[top_node, *rest], edges=[edges[k] for k in sorted(edges, key=str)])


def _outgoing(store, label: str, keys: list) -> list[tuple[Edge, Node]]:
    found = []
    for row in store.outgoing(label, keys, nodes=True):
        if row["type"] in LEFT_OUT or row["label"] is None:
            continue
        node = _node(row["label"], row["node"])
        if node.key is None:
            continue
        found.append(
            (Edge(row["type"], label, row["src"], node.label, node.key, row["props"]), node)
        )
    return found


def _node(label: str, props: dict) -> Node:
    key = key_of(label)
    props = dict(props or {})
    return Node(label, props.pop(key, None), props)


def _open_folder(folder: Path) -> dict:
    """The marker of ``folder`` (a new one for a new or empty folder)."""
    if (folder / MARKER).is_file():
        marker = _read_marker(folder)
        marker["runs"] = dict(marker["runs"])
        return marker
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} exists and is not an export folder: give a new or empty one")
    folder.mkdir(parents=True, exist_ok=True)
    return {"format": FORMAT, "version": VERSION, "runs": {}}


def _file_name(uid: str) -> str:
    """``uid`` where it is a safe file name, else a digest of it."""
    if _SAFE.fullmatch(uid):
        return uid
    return "run-" + hashlib.sha256(uid.encode()).hexdigest()[:32]


def _copy_logs(
    records: Records, home: Path, folder: Path, limit: int, secrets: tuple[str, ...]
) -> list[dict]:
    """Copy the log files of every run of ``records`` (each work folder once) into
    ``folder/logs/<run>/``, ``secrets`` masked; return their entries."""
    logs, seen = [], set()
    for node in records.nodes:
        if node.label != "Run":
            continue
        workdir = _workdir(node, home)
        if workdir is None or workdir in seen:
            continue
        seen.add(workdir)
        for source in log_files(workdir):
            relative = f"logs/{_file_name(node.key)}/{source.name}"
            logs.append(
                {
                    "run": node.key,
                    "name": source.name,
                    "file": relative,
                    **_copy_tail(source, folder / relative, limit, secrets),
                }
            )
    return logs


def _workdir(run: Node, home: Path) -> Path | None:
    """The work folder of ``run`` inside ``home``: its ``workdir`` if that is inside, else
    ``home/runs/<run>``, where an import puts the logs of a run recorded elsewhere."""
    home = home.resolve()
    recorded = run.props.get("workdir")
    for candidate in (
        recorded if isinstance(recorded, str) and recorded else None,
        home / "runs" / _file_name(str(run.key)),
    ):
        if candidate is None:
            continue
        path = Path(candidate).resolve()
        if path.is_relative_to(home) and path.is_dir():
            return path
    return None


def log_files(workdir: Path) -> list[Path]:
    """The regular files of ``workdir`` (not its subfolders, no symbolic links, plain names)
    that an export copies: :data:`LOG_FILES` and ``*.log``."""
    try:
        entries = sorted(os.scandir(workdir), key=lambda e: e.name)
    except OSError:
        return []
    return [
        Path(entry.path)
        for entry in entries
        if (entry.name in LOG_FILES or entry.name.endswith(".log"))
        and _SAFE.fullmatch(entry.name)
        and entry.is_file(follow_symlinks=False)
    ]


def _copy_tail(source: Path, target: Path, limit: int, secrets: tuple[str, ...]) -> dict:
    with open(source, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        # From a secret's length before the end kept: one it cuts in two is masked whole.
        start = max(0, size - limit - max(map(len, secrets), default=0) - 256)
        src.seek(start)
        data = mask_bytes(src.read(size - start), secrets)
    data = data[len(data) - min(limit, len(data)) :]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {
        "size": size,
        "kept": len(data),
        "truncated": size > limit,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


# --- import -------------------------------------------------------------------------------


def is_export(path) -> bool:
    """Whether ``path`` is a folder written by :func:`export_runs` (it holds the marker).

    >>> is_export("https://github.com/org/repo")
    False
    """
    try:
        return (Path(path).expanduser() / MARKER).is_file()
    except (OSError, ValueError):
        return False


def read_export(folder: str | Path) -> list[RunRecord]:
    """Every run record of the export ``folder``, checked.

    Raises
    ------
    InvalidInput
        The marker or a record is not valid JSON of its format, names a file outside the
        folder, or holds a malformed node or relationship (the message names file and item).
    """
    folder = Path(folder).expanduser()
    marker = _read_marker(folder)
    records = []
    for uid, relative in sorted(marker["runs"].items()):
        path = _inside(folder, relative, folder / MARKER)
        data = _load(path)
        if data.get("format") != RECORD_FORMAT or data.get("run") != uid:
            raise InvalidInput(f"{path}: not the record of run {uid!r} ({RECORD_FORMAT})")
        _check_version(data, path)
        nodes = [
            node_from(n, f"{path}: node {i}") for i, n in enumerate(_list(data, "nodes", path))
        ]
        edges = [
            edge_from(e, f"{path}: relationship {i}")
            for i, e in enumerate(_list(data, "edges", path))
        ]
        held = {(n.label, n.key) for n in nodes}
        for i, e in enumerate(edges):
            if (e.src_label, e.src_key) not in held or (e.dst_label, e.dst_key) not in held:
                raise InvalidInput(
                    f"{path}: relationship {i} ({e.type}) ends at a node the record does not hold"
                )
        if ("Run", uid) not in held:
            raise InvalidInput(f"{path}: holds no Run {uid!r}")
        runs = {n.key for n in nodes if n.label == "Run"}
        logs = [_log_entry(log, folder, path, runs) for log in _list(data, "logs", path)]
        header = {
            k: str(data.get(k) or "") for k in ("ckg_version", "exported_at", "exported_from")
        }
        records.append(RunRecord(uid, path, header, Records(nodes, edges), logs))
    return records


def import_runs(store, home: Path, folder: str | Path, *, strict: bool = False) -> RunImport:
    """Write the runs of the export ``folder`` into ``store`` and their logs under ``home``.

    Parameters
    ----------
    store : GraphStore
    home : Path
        ckg's home: log files go to ``home/runs/<run>/``.
    folder : path
        A folder written by :func:`export_runs`.
    strict : bool
        Fail, writing nothing, when there is any warning (a log file missing or altered).

    Returns
    -------
    RunImport

    Raises
    ------
    InvalidInput
        From :func:`read_export`; with ``strict``, when there are warnings.
    """
    folder = Path(folder).expanduser()
    records = read_export(folder)
    summary = RunImport(str(folder), runs=[r.uid for r in records])
    summary.exported_from = sorted({r.header["exported_from"] for r in records})
    logs = [(log, r) for r in records for log in r.logs]
    checked = [(log, r) for log, r in logs if _log_ok(folder, log, r.path, summary.warnings)]
    if strict and summary.warnings:
        raise InvalidInput(
            f"{folder}: {len(summary.warnings)} warning(s) with --strict; "
            f"nothing written (first: {summary.warnings[0]})"
        )
    nodes: dict[tuple[str, object], Node] = {}
    for record in records:
        provenance = {
            "imported_from": record.header["exported_from"],
            "exported_at": record.header["exported_at"],
            "exported_with": f"ckg {record.header['ckg_version']}".strip(),
        }
        for node in record.records.nodes:
            if (node.label, node.key) not in nodes:
                # A node imported before and exported again keeps its first origin.
                nodes[(node.label, node.key)] = Node(
                    node.label, node.key, {**provenance, **node.props}
                )
    present = _present(store, list(nodes))
    new = [node for ident, node in nodes.items() if ident not in present]
    edges = {
        (e.type, e.src_label, e.src_key, e.dst_label, e.dst_key): e
        for r in records
        for e in r.records.edges
    }
    store.write_records(Records(nodes=new, edges=list(edges.values())), one_transaction=True)
    summary.created = dict(Counter(node.label for node in new))
    summary.kept = len(present)
    summary.relationships = len(edges)
    for log, _ in checked:
        summary.logs += _place_log(folder, log, home, summary.warnings)
    return summary


def _present(store, idents: list[tuple[str, object]]) -> set[tuple[str, object]]:
    by_label: dict[str, list] = {}
    for label, key in idents:
        by_label.setdefault(label, []).append(key)
    return {(label, key) for label, keys in by_label.items() for key in store.existing(label, keys)}


def _read_marker(folder: Path) -> dict:
    path = folder / MARKER
    marker = _load(path)
    if marker.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a ckg export marker (format {FORMAT!r})")
    _check_version(marker, path)
    runs = marker.get("runs")
    if not isinstance(runs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in runs.items()
    ):
        raise InvalidInput(f"{path}: 'runs' must map run uids to record files")
    return marker


def _check_version(data: dict, path: Path) -> None:
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInput(f"{path}: no valid format version")
    if version > VERSION:
        raise InvalidInput(
            f"{path}: format version {version} is newer than this ckg reads "
            f"({VERSION}): upgrade ckg"
        )


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: missing from the export") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: not a JSON object")
    return data


def _list(data: dict, name: str, path: Path) -> list:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise InvalidInput(f"{path}: {name!r} must be a list")
    return value


def _inside(folder: Path, relative, where: Path) -> Path:
    """``folder / relative``, refused unless it stays inside ``folder``."""
    if (
        not isinstance(relative, str)
        or not relative
        or Path(relative).is_absolute()
        or ".." in Path(relative).parts
    ):
        raise InvalidInput(f"{where}: {relative!r} is not a path inside the export")
    return folder / relative


def _log_entry(log, folder: Path, path: Path, runs: set) -> dict:
    if not isinstance(log, dict):
        raise InvalidInput(f"{path}: a log entry must be an object")
    name, run = log.get("name"), log.get("run")
    if run not in runs or not isinstance(name, str) or not _SAFE.fullmatch(name):
        raise InvalidInput(
            f"{path}: log entry {log.get('file')!r} names no run of the record "
            "or an unsafe file name"
        )
    _inside(folder, log.get("file"), path)
    if not isinstance(log.get("kept"), int) or not isinstance(log.get("sha256"), str):
        raise InvalidInput(f"{path}: log entry {log.get('file')!r} lacks its size or sha256")
    return log


def _log_ok(folder: Path, log: dict, where: Path, warnings: list[str]) -> bool:
    """Whether the log file is in the export as its entry says (else a warning)."""
    path = folder / log["file"]
    try:
        info = path.lstat()
        ok = (
            stat.S_ISREG(info.st_mode)
            and info.st_size == log["kept"]
            and hashlib.sha256(path.read_bytes()).hexdigest() == log["sha256"]
        )
    except OSError:
        ok = False
    if not ok:
        warnings.append(f"{path}: missing, or not the file {where.name} lists; not copied")
    return ok


def _place_log(folder: Path, log: dict, home: Path, warnings: list[str]) -> int:
    """Copy one log file to ``home/runs/<run>/<name>`` unless a file is there already."""
    target = Path(home) / "runs" / _file_name(log["run"]) / log["name"]
    if target.exists() or target.is_symlink():
        return 0
    data = (folder / log["file"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != log["sha256"]:  # changed since it was checked
        warnings.append(f"{folder / log['file']}: changed while importing; not copied")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        out.write(data)
    return 1
