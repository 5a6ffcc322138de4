"""MLPerf inference results: Collective Mind experiment records and the official submission layout.

**CM records** (``cm-result.json``, cm4mlperf-results): a JSON list of flat records with
``Organization``, ``Platform`` (the system id), ``SystemName``, ``Model``, ``Scenario``,
``Division``, ``version``, ``Result`` with ``Result_Units``, ``Accuracy`` (percent),
``Result_Power`` with ``Result_Power_Units`` and ``Inference_per_Joule`` where power was
measured, and the system's hardware and software fields. The published metrics of a record
are ``Result``, ``Accuracy``, ``Result_Power`` and ``Inference_per_Joule``, whichever it has;
``Accuracy_div_100`` repeats ``Accuracy`` on a 0-1 scale and is not a result of its own.

**Submission layout** (``<division>/<submitter>/systems/<system>.json`` and
``<division>/<submitter>/results/<system>/<model>/<scenario>/``): the system description gives
the ``Platform``; ``performance/run_1/mlperf_log_summary.txt`` gives throughput (Offline,
Server) or latency (SingleStream, MultiStream); ``accuracy/accuracy.txt`` gives accuracy;
``power`` folders give the mean of the ``Watts`` samples of ``spl.txt`` (the analyser's whole
log, not cut to the timed run, hence a slight underestimate of the power under load).

Records of one submitter, system, version, model, scenario and division are one result set
(:func:`result_set`): v4.x publishes throughput and power of one submission as two records.
Every set becomes a ``Platform`` (uid: a digest of the hardware and software fields of its
first record) and one ``Result`` per published metric on it, with ``scenario``,
``division``, ``version``, ``submitter``, ``record_uid`` and ``result_set`` on the Result.
The task and dataset come from the benchmark model (MLPerf's reference datasets,
:data:`BENCHMARKS`).
"""

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from ckg.core.records import Node, Problem
from ckg.core.values import parse_unit
from ckg.formats.files import read_file
from ckg.formats.loaders import INT64
from ckg.formats.published import (
    UNREADABLE,
    ResultRecords,
    Row,
    build_file,
    primitive,
    read_json,
)

#: MLPerf inference benchmark model -> (task, reference dataset), from the MLPerf rules.
BENCHMARKS = {
    "resnet50": ("Image Classification", "ImageNet"),
    "resnet": ("Image Classification", "ImageNet"),
    "mobilenet": ("Image Classification", "ImageNet"),
    "retinanet": ("Object Detection", "OpenImages"),
    "ssd-mobilenet": ("Object Detection", "COCO"),
    "ssd-resnet34": ("Object Detection", "COCO"),
    "bert-99": ("Question Answering", "SQuAD1.1"),
    "bert-99.9": ("Question Answering", "SQuAD1.1"),
    "3d-unet-99": ("Medical Image Segmentation", "KiTS19"),
    "3d-unet-99.9": ("Medical Image Segmentation", "KiTS19"),
    "rnnt": ("Speech Recognition", "LibriSpeech"),
    "gptj-99": ("Summarization", "CNN/DailyMail"),
    "gptj-99.9": ("Summarization", "CNN/DailyMail"),
    "llama2-70b-99": ("Question Answering", "OpenOrca"),
    "llama2-70b-99.9": ("Question Answering", "OpenOrca"),
    "stable-diffusion-xl": ("Text to Image", "COCO 2014"),
    "dlrm-v2-99": ("Recommendation", "Criteo 1TB"),
    "dlrm-v2-99.9": ("Recommendation", "Criteo 1TB"),
}

#: The CM record fields that are published metrics, with the unit field beside each.
CM_METRICS = (
    ("Result", "Result_Units"),
    ("Accuracy", None),
    ("Result_Power", "Result_Power_Units"),
    ("Inference_per_Joule", None),
)
#: Units of fields that state none (Result_Power_Units is absent from some records).
_CM_UNITS = {"Accuracy": "%", "Result_Power": "W", "Inference_per_Joule": "samples/J"}
#: Hardware and software fields of a system that make up its Platform fingerprint.
_FINGERPRINT = (
    "submitter",
    "system_name",
    "accelerator_model_name",
    "accelerators_per_node",
    "host_processor_model_name",
    "host_processor_core_count",
    "host_processors_per_node",
    "number_of_nodes",
    "operating_system",
    "framework",
)
_CM_KEYS = {"Organization", "Scenario", "Model"}
#: Most accelerators one node is taken to have: the Platform lists each one, and a file
#: claiming a billion would make a list of a billion names.
MAX_ACCELERATORS = 4096
#: Canonical unit of a record's Result -> the metric it is.
_RESULT_METRIC = {"1/s": "Throughput", "s": "Latency", "W": "Power", "J": "Energy"}
_SUMMARY = {
    # mlperf_log_summary.txt line -> (metric label, unit)
    "Samples per second": ("Samples/s", "samples/s"),
    "Scheduled samples per second": ("Queries/s", "queries/s"),
    "90th percentile latency (ns)": ("Latency", "ns"),
    "99th percentile latency (ns)": ("Latency", "ns"),
    "Tokens per second": ("Tokens/s", "tokens/s"),
}
_LATENCY_SCENARIOS = {
    "singlestream": "90th percentile latency (ns)",
    "multistream": "99th percentile latency (ns)",
}


def is_cm_records(data: object) -> bool:
    """Whether parsed JSON is a list of CM MLPerf experiment records."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(r, dict) and _CM_KEYS <= r.keys() for r in data)
    )


def detect(root: Path, candidates: list[Path]) -> list[Path]:
    """Files among ``candidates`` this importer reads: CM records and submission trees.

    A submission is detected by its ``systems/<system>.json``; its results are found from
    there, so one system file stands for the whole ``<division>/<submitter>`` folder.
    """
    found = []
    for rel in candidates:
        if rel.suffix.lower() != ".json":
            continue
        if rel.parent.name == "systems" and len(rel.parts) >= 4:
            found.append(rel)
            continue
        head = _head(root / rel)
        if all(f'"{key}"' in head for key in _CM_KEYS):
            found.append(rel)
    return found


def read(root: Path, source_uid: str, files: list[str | Path] | None = None) -> ResultRecords:
    """Read MLPerf results under ``root``: the ``files`` given, or all :func:`detect` finds."""
    root = Path(root)
    if files is None:
        files = detect(root, sorted(p.relative_to(root) for p in root.rglob("*.json")))
    out = ResultRecords()
    for rel in map(Path, files):
        name = rel.as_posix()
        data = read_json(root, rel, out)
        if data is UNREADABLE:
            continue
        part = ResultRecords()  # the file's Platforms and warnings, kept if it all reads
        if is_cm_records(data):
            build_file(name, _cm_rows(data, name, part), source_uid, out, part)
        elif rel.parent.name == "systems" and isinstance(data, dict):
            build_file(name, _submission_rows(root, rel, data, part), source_uid, out, part)
        else:
            out.warnings.append(Problem(name, "not MLPerf results (CM records or systems/*.json)"))
    # Many records share one system: keep one Platform node per uid.
    unique = {(n.label, n.key): n for n in out.nodes}
    out.nodes[:] = list(unique.values())
    return out


def platform_node(system: dict) -> Node:
    """The Platform of an MLPerf system description (CM record or ``systems/*.json``)."""
    fingerprint = {k: system.get(k) for k in _FINGERPRINT}
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
    uid = f"platform:mlperf:{digest.hexdigest()[:20]}"
    count = _int(system.get("accelerators_per_node"))
    count = count if count is not None and count <= MAX_ACCELERATORS else None
    cores = _int(system.get("host_processor_core_count"))
    sockets = _int(system.get("host_processors_per_node")) or 1
    props = {
        "uid": uid,
        "name": system.get("system_name"),
        "system_id": system.get("system_id"),
        "submitter": system.get("submitter"),
        "cpu_model": system.get("host_processor_model_name"),
        "cores": _int(cores * sockets) if cores else None,
        "accelerators": [str(system["accelerator_model_name"])] * (count or 1)
        if system.get("accelerator_model_name") and count
        else [],
        "os": system.get("operating_system"),
        "framework": system.get("framework"),
        "system_type": system.get("system_type"),
        "nodes": _int(system.get("number_of_nodes")),
        "origin": "mlperf",
    }
    return Node(
        "Platform", uid, {k: primitive(v) for k, v in props.items() if v not in (None, "", [])}
    )


def result_set(rec: dict) -> str:
    """The result set a CM record belongs to: ``mlperf:`` and a digest of its submitter,
    system, version, model, scenario and division.

    From v4.0 on, the records split one submission in two (throughput with accuracy, then
    power, each with its own uid); records of one set are one point of a front and one
    row of a comparison. Each Result still names its own record in ``record_uid``.

    >>> a = {"Organization": "SiMa", "Platform": "davinci_hhhl", "version": "v4.0",
    ...      "Model": "resnet50", "Scenario": "Offline", "Division": "closed", "uid": "1"}
    >>> result_set(a) == result_set({**a, "uid": "2", "Result_Power": 20.5})
    True
    """
    key = [
        str(rec.get(k) or "")
        for k in ("Organization", "Platform", "version", "Model", "Scenario", "Division")
    ]
    return "mlperf:" + hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def _cm_rows(records: list[dict], path: str, out: ResultRecords) -> Iterator[Row]:
    platforms: dict[str, Node] = {}  # one per result set: its first record's system
    for index, rec in enumerate(records):
        joined = result_set(rec)
        if joined not in platforms:
            platforms[joined] = platform_node(
                {
                    "submitter": rec.get("Organization"),
                    "system_name": rec.get("SystemName"),
                    "system_id": rec.get("Platform"),
                    "system_type": rec.get("SystemType"),
                    **{k: rec.get(k) for k in _FINGERPRINT if k in rec},
                }
            )
        platform = platforms[joined]
        out.nodes.append(platform)
        model = str(rec.get("Model") or "")
        task, dataset = BENCHMARKS.get(model.lower(), ("", ""))
        extra = {
            "scenario": rec.get("Scenario"),
            "division": rec.get("Division"),
            "version": rec.get("version"),
            "submitter": rec.get("Organization"),
            "system": rec.get("Platform"),
            "url": rec.get("url"),
            "record_uid": rec.get("uid"),
            "result_set": joined,
        }
        where = f"record {index} ({rec.get('Organization')}/{rec.get('Platform')}/{model})"
        for field, unit_field in CM_METRICS:
            if field not in rec:
                continue
            unit = str(rec.get(unit_field) or "") if unit_field else ""
            unit = unit or _CM_UNITS.get(field, "")
            label = field
            if field == "Result":
                unit = unit or str(rec.get("Units") or "")
                # The unit says what Result measures: Samples/s, Queries/s, ms, Watts.
                stated = parse_unit(unit)
                label = _RESULT_METRIC.get(stated.canonical if stated else "", unit or "Result")
            yield Row(
                path,
                where,
                str(label),
                rec[field],
                task=task,
                dataset=dataset,
                model=model,
                unit=unit,
                platform=platform.key,
                extra={k: v for k, v in extra.items() if v is not None},
            )


def _submission_rows(root: Path, rel: Path, system: dict, out: ResultRecords) -> Iterator[Row]:
    """Rows of ``<division>/<submitter>/results/<system>/<model>/<scenario>/`` for one system."""
    system_id = rel.stem
    submitter_dir = rel.parent.parent
    system = {"system_id": system_id, **system}
    platform = platform_node(system)
    out.nodes.append(platform)
    results = root / submitter_dir / "results" / system_id
    if not results.is_dir():
        out.warnings.append(Problem(rel.as_posix(), f"no results folder {results.name} beside it"))
        return
    division = submitter_dir.parent.name
    for scenario_dir in sorted(p for p in results.glob("*/*") if p.is_dir()):
        model, scenario = scenario_dir.parent.name, scenario_dir.name
        task, dataset = BENCHMARKS.get(model.lower(), ("", ""))
        where_dir = scenario_dir.relative_to(root).as_posix()
        extra = {
            "scenario": scenario,
            "division": division,
            "submitter": system.get("submitter") or submitter_dir.name,
            "system": system_id,
        }
        for path, label, raw, unit in _scenario_values(scenario_dir, scenario, root, out):
            yield Row(
                path,
                f"{where_dir}:{label}",
                label,
                raw,
                task=task,
                dataset=dataset,
                model=model,
                unit=unit,
                platform=platform.key,
                extra=extra,
            )


def _scenario_values(
    folder: Path, scenario: str, root: Path, out: ResultRecords
) -> Iterator[tuple[str, str, str | None, str]]:
    """(file, metric label, raw value, unit) for each summary file of one scenario folder."""
    summary = folder / "performance" / "run_1" / "mlperf_log_summary.txt"
    text = _text(summary, root, out) if summary.is_file() else None
    if text is not None:
        fields = _summary_fields(text)
        key = _LATENCY_SCENARIOS.get(scenario.lower().replace("_", ""))
        if key is None:
            key = next((k for k in _SUMMARY if k in fields and "latency" not in k), None)
        rel = summary.relative_to(root).as_posix()
        if key is None or key not in fields:
            out.warnings.append(Problem(rel, "no throughput or latency line found"))
        else:
            label, unit = _SUMMARY[key]
            yield rel, label, fields[key], unit
    accuracy = folder / "accuracy" / "accuracy.txt"
    text = _text(accuracy, root, out) if accuracy.is_file() else None
    if text is not None:
        rel = accuracy.relative_to(root).as_posix()
        values = _accuracy_values(text)
        if not values:
            out.warnings.append(Problem(rel, "no accuracy value found"))
        for label, raw, unit in values:
            yield rel, label, raw, unit
    spl = next(iter(sorted(folder.glob("**/power/spl.txt"))), None)
    text = _text(spl, root, out) if spl is not None else None
    if text is not None:
        watts = _mean_watts(text)
        yield spl.relative_to(root).as_posix(), "Power", None if watts is None else repr(watts), "W"


def _text(path: Path, root: Path, out: ResultRecords) -> str | None:
    """A submission file's text, or None with a warning: a link that leaves the source, a
    FIFO or an outsized file (:func:`ckg.formats.files.read_file`) is not read."""
    try:
        return read_file(path, root).decode("utf-8", errors="replace")
    except OSError as exc:
        out.warnings.append(
            Problem(path.relative_to(root).as_posix(), f"cannot read: {exc.strerror or exc}")
        )
        return None


def _summary_fields(text: str) -> dict[str, str]:
    """``name : value`` lines of an mlperf_log_summary.txt."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(name.strip(), value.strip())
    return fields


_ACCURACY_LINE = re.compile(
    r"\b(accuracy|mAP|exact_match|f1|rouge1|rougeL|DICE|WER)\s*[=:]\s*"
    r"(?P<value>[-+]?\d+(?:\.\d+)?)\s*(?P<pct>%?)",
    re.I,
)


def _accuracy_values(text: str) -> list[tuple[str, str, str]]:
    """(label, raw, unit) of each accuracy figure an accuracy.txt states, first one per name."""
    seen: dict[str, tuple[str, str, str]] = {}
    for match in _ACCURACY_LINE.finditer(text):
        label = match.group(1)
        seen.setdefault(label.casefold(), (label, match.group("value"), match.group("pct")))
    # JSON dicts such as {"exact_match": 83.6, "f1": 90.8}, as BERT's accuracy script prints.
    for match in re.finditer(r'"(exact_match|f1)"\s*:\s*([-+]?\d+(?:\.\d+)?)', text):
        seen.setdefault(match.group(1), (match.group(1), match.group(2), ""))
    return list(seen.values())


def _mean_watts(text: str) -> float | None:
    """Mean of the ``Watts,<value>`` samples of a power analyser log (spl.txt)."""
    samples = [float(m) for m in re.findall(r"Watts,\s*([-+]?\d+(?:\.\d+)?)", text)]
    return round(sum(samples) / len(samples), 6) if samples else None


def _int(value: object) -> int | None:
    """``value`` as an integer a graph property holds, or None."""
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number in INT64 else None


def _head(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(size).decode("utf-8", "replace")
    except OSError:
        return ""
