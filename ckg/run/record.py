"""The graph records of one run: ``Run`` and ``Measurement`` nodes and their relationships.

``(Run)-[:OF]->(Artifact)``, ``(Run)-[:ON]->(Platform)``, ``(Run)-[:IN]->(Experiment)``,
``(Run)-[:USED]->(Artifact)`` for each dependency, ``(Measurement)-[:OF_METRIC]->(Metric)``
and ``(Run)-[:MEASURED]->(Measurement)``; ``MEASURED`` comes last, so a run whose every
``MEASURED`` relationship is in the graph was written whole (see :mod:`ckg.run.journal`).
"""

from ckg.core import redact
from ckg.core.errors import StoreUnavailable
from ckg.core.records import Edge, Node, Records
from ckg.run import journal
from ckg.run.measure import Figure, summarize


def measurement_node(run_uid: str, figure: Figure) -> Node:
    """A ``Measurement`` of ``figure``: value is the median over repeats, with n, min, max,
    mean and stdev beside it.

    >>> measurement_node("r1", Figure("runtime", [1.0, 3.0], "s", "wallclock")).props["value"]
    2.0
    """
    stats = summarize(figure.values)
    uid = f"{run_uid}:{figure.metric}" + (f":{figure.device}" if figure.device else "")
    props = {
        "metric": figure.metric,
        "value": stats["median"],
        "unit": figure.unit,
        "method": figure.method,
        "run_uid": run_uid,
        **stats,
        "values": [float(v) for v in figure.values],  # every repeat, as measured
    }
    if figure.device:
        props["device"] = figure.device
    props.update(figure.extra)
    return Node("Measurement", uid, props)


def run_records(
    run: dict,
    *,
    artifact_uid: str,
    figures: list[Figure],
    platform: Node,
    experiment: Node,
    used: list[str] = (),
) -> Records:
    """Records of one run. ``run`` holds the Run node's properties, ``uid`` included.

    Examples
    --------
    >>> r = run_records({"uid": "r1", "status": "ok"}, artifact_uid="a1",
    ...                 figures=[Figure("runtime", [0.5], "s", "wallclock")],
    ...                 platform=Node("Platform", "p1"), experiment=Node("Experiment", "e1"))
    >>> [e.type for e in r.edges]
    ['OF', 'ON', 'IN', 'OF_METRIC', 'MEASURED']
    """
    from ckg.core import metrics

    run_uid = run["uid"]
    props = {k: v for k, v in run.items() if k != "uid" and v is not None}
    records = Records(nodes=[platform, experiment, Node("Run", run_uid, props)])
    records.edges += [
        Edge("OF", "Run", run_uid, "Artifact", artifact_uid),
        Edge("ON", "Run", run_uid, "Platform", platform.key),
        Edge("IN", "Run", run_uid, "Experiment", experiment.key),
    ]
    records.edges += [Edge("USED", "Run", run_uid, "Artifact", uid) for uid in used]
    measured = []
    for figure in figures:
        node = measurement_node(run_uid, figure)
        known = metrics.get(figure.metric)
        metric_props = {"direction": known.direction, "unit": known.unit} if known else {}
        records.nodes += [node, Node("Metric", figure.metric, metric_props)]
        records.edges.append(Edge("OF_METRIC", "Measurement", node.key, "Metric", figure.metric))
        measured.append(Edge("MEASURED", "Run", run_uid, "Measurement", node.key))
    records.edges += measured
    return records


class Recorder:
    """Writes the records of one command: each batch to the journal on disk first
    (:func:`ckg.run.journal.append`), then to the graph in one transaction.

    When the graph cannot be written (:class:`~ckg.core.errors.StoreUnavailable`), the command
    goes on: this and every later batch wait in the journal for ``ckg db recover``, and
    :attr:`unrecorded` counts them.

    Parameters
    ----------
    store : GraphStore
    home : Path
        ckg's home, whose journal receives every batch.

    Attributes
    ----------
    store_ok : bool
        Whether the graph is still written to.
    unrecorded : int
        Batches left in the journal only.
    error : str
        The store's error that stopped the writes ("" while none).
    """

    def __init__(self, store, home):
        self.store = store
        self.home = home
        self.store_ok = True
        self.unrecorded = 0
        self.error = ""

    def write(self, records: Records, secrets: tuple[str, ...]) -> None:
        """Mask ``secrets`` in ``records``, journal them, and write them to the graph."""
        redact.mask_records(records, secrets)
        journal.append(self.home, records)
        if not self.store_ok:
            self.unrecorded += 1
            return
        try:
            self.store.write_records(records, one_transaction=True)
        except StoreUnavailable as exc:
            # Journalled already: stop trying the graph for the rest of this command.
            self.store_ok = False
            self.unrecorded += 1
            self.error = str(exc)
