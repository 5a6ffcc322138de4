"""Runs written straight into a store, as ckg run records them: for tests of what reads them
(Pareto fronts, the web view) without running anything."""

import json

from ckg.core.records import Node
from ckg.run.measure import Figure
from ckg.run.record import run_records

#: (model, batch, accuracy %, latency s): fast, accurate, both; two dominated; one failed.
RUNS = [
    ("knn", 1, 97.5, 0.030),
    ("logreg", 1, 96.0, 0.002),
    ("svc", 1, 98.5, 0.050),
    ("tree", 1, 85.0, 0.004),
    ("forest", 1, 96.5, 0.060),
]


def write_runs(kg, runs, experiment="digits", status="ok", prefix="r", extra=None):
    exp = Node("Experiment", f"exp-{experiment}", {"name": experiment})
    platform = Node("Platform", "host-1", {"cpu_model": "test"})
    kg.store.write_records(
        run_records(
            {"uid": "artifact-1", "status": "ok"},
            artifact_uid="a",
            figures=[],
            platform=platform,
            experiment=exp,
        )  # fmt: skip
    )
    for i, (model, batch, acc, lat) in enumerate(runs):
        run = {
            "uid": f"{prefix}{i}",
            "status": status,
            "params": json.dumps({"model": model, "batch": batch}),
        }
        figures = [Figure("accuracy", [acc], "%"), Figure("latency", [lat], "s")]
        figures += [Figure(name, [value], "") for name, value in (extra or {}).items()]
        kg.store.write_records(
            run_records(run, artifact_uid="a", figures=figures, platform=platform, experiment=exp)
        )
