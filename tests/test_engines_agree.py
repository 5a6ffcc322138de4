"""The two stores give the same answers: the corpora ingested and imported into the embedded
FalkorDB engine and into a real Neo4j, then every read command's ``--json`` compared.

Conflicting inputs (a paper dated differently by two files), statuses that come from several
edges and ties must not depend on the order an engine returns rows in.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.store import open_store

CKG = str(Path(sys.executable).with_name("ckg"))
#: Every read command, with arguments that reach real data of the corpora.
READS = [
    ["find", "--tags", "get,python3"],
    ["find", "--tags", "detect,os"],
    ["show", "d0b5dd74373f4a62"],  # get-python3: an alias two sources ship
    ["deps", "d775cac873ee4231", "--depth", "2"],  # app-mlperf-inference
    ["deps", "d0b5dd74373f4a62", "--reverse"],
    ["plan", "3d5e908e472b417e"],  # app-image-classification-onnx-py
    ["results", "list", "--dataset", "SQuAD1.1"],
    ["compare", "--task", "Question Answering", "--dataset", "SQuAD1.1", "--metric", "F1"],
    ["compare", "--task", "Language Modelling", "--dataset", "PTB", "--metric", "Perplexity"],
    ["query", "compare-papers", "--param", "dataset=SNLI"],
    ["query", "unresolved-deps"],
    ["query", "platform-leaderboard", "--param", "model=resnet50", "--param", "scenario=Offline"],
    [
        "pareto",
        "throughput,power",
        "--from",
        "papers",
        "--task",
        "Image Classification",
        "--no-write",
    ],
]


def _ckg(args: list[str], env: dict) -> str:
    done = subprocess.run([CKG, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"ckg {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def homes(corpora, neo4j_uri, tmp_path_factory):
    """The same corpora in an embedded home and in Neo4j; the environment of each."""
    graph = open_store(neo4j_uri)
    graph.reset()
    graph.close()
    envs = {}
    for engine, db in (("embedded", "embedded"), ("neo4j", neo4j_uri)):
        home = tmp_path_factory.mktemp(engine)
        env = {**os.environ, "CKG_HOME": str(home), "CKG_DB": db}
        env.pop("NEO4J_URI", None)
        for name in ("cm4mlops", "mlperf-automations", "ck-env"):
            _ckg(["ingest", str(corpora / name), "--json"], env)
        for name in ("pwc", "mlperf"):
            _ckg(["results", "import", str(corpora / name), "--json"], env)
        envs[engine] = env
    yield envs
    subprocess.run([CKG, "db", "stop"], env=envs["embedded"], capture_output=True)


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) for a in READS])
def test_every_read_command_answers_the_same_on_both_engines(homes, args):
    answers = {engine: json.loads(_ckg([*args, "--json"], env)) for engine, env in homes.items()}
    assert answers["embedded"], f"ckg {' '.join(args)} found nothing to compare"
    assert _without_paths(answers["embedded"]) == _without_paths(answers["neo4j"])


def _without_paths(data):
    """The answer less what only tells the two homes apart: when each was written."""
    if isinstance(data, dict):
        return {
            k: _without_paths(v) for k, v in data.items() if k not in ("ingested_at", "computed_at")
        }
    if isinstance(data, list):
        return [_without_paths(v) for v in data]
    return data


#: A workflow whose figures are its grid point: the same on both engines.
SCORER = """\
alias: scorer
uid: wf-scorer
params: {n: 1, p: 5}
run: |
  echo '{{"f1": {n}, "perplexity": {p}}}'
"""


@pytest.fixture(scope="module")
def experiments(homes, tmp_path_factory):
    """In each of ``homes``: two ``ckg run --experiment grid-a`` calls, the front of grid-a,
    then ``ckg rm`` of one of its runs. Yields what each engine answered, uids made alike."""
    folder = tmp_path_factory.mktemp("scorer")
    (folder / "ckg.yaml").write_text(SCORER)
    answers = {}
    for engine, env in homes.items():
        _ckg(["ingest", str(folder)], env)
        _ckg(["run", "scorer", "--grid", "n=1,2", "--grid", "p=4", "--experiment", "grid-a"], env)
        _ckg(["run", "scorer", "--grid", "n=3", "--grid", "p=9", "--experiment", "grid-a"], env)
        runs = json.loads(_ckg(["runs", "--experiment", "grid-a", "--json"], env))
        # Uids are new on each engine: named by the grid point they ran, alike on both.
        alike = {r["run"]: f"run-{r['params']}" for r in runs} | {runs[0]["experiment"]: "exp"}
        got = {
            "runs": runs,
            "ranked": json.loads(
                _ckg(["pareto", "f1,perplexity", "--experiment", "grid-a", "--json"], env)
            ),
            "timing": _timing(
                _ckg(
                    [
                        "pareto",
                        "runtime,cpu_system_time",
                        "--experiment",
                        runs[0]["experiment"][:12],
                        "--json",
                        "--no-write",
                    ],
                    env,
                )
            ),
        }
        alike[got["ranked"]["front"]] = "front"  # a digest of the experiment's uid
        gone = next(r["run"] for r in runs if '"n": 2' in r["params"])
        got["rm"] = json.loads(_ckg(["rm", gone, "--json"], env))
        got["after"] = json.loads(_ckg(["runs", "--experiment", "grid-a", "--json"], env))
        got["stale"] = json.loads(
            _ckg(
                [
                    "query",
                    "MATCH (f:Front) RETURN f.scope AS scope, f.stale IS NOT NULL AS stale",
                    "--json",
                ],
                env,
            )
        )
        answers[engine] = _alike(got, alike)
    return answers


def _timing(answer: str) -> dict:
    """A front of measured times, less what differs between any two runs: their times, and
    so the ranks."""
    front = json.loads(answer)
    return {
        "objectives": front["objectives"],
        "units": front["units"],
        "scope": front["scope"],
        "unranked": front["unranked"],
        "points": sorted(p["label"] for p in front["points"]),
    }


def _alike(data, names: dict):
    """``data`` with the uids of ``names`` replaced, and when each thing was made left out, as
    are the values this host measured (times, memory, energy: any two runs differ in them);
    the values the scripts reported stay."""
    if isinstance(data, dict):
        if data.get("method") not in (None, "reported"):
            data = {k: v for k, v in data.items() if k != "value"}
        return {
            k: _alike(v, names) for k, v in data.items() if k not in ("started_at", "computed_at")
        }
    if isinstance(data, list):
        return [_alike(v, names) for v in data]
    if isinstance(data, str):
        for uid, name in names.items():
            data = data.replace(uid, name)
    return data


def test_experiments_fronts_and_rm_answer_the_same_on_both_engines(experiments):
    embedded, neo4j = experiments["embedded"], experiments["neo4j"]
    assert len(embedded["runs"]) == 3 and len(embedded["after"]) == 2
    assert embedded["ranked"]["scope"] == "runs experiment=exp"
    assert len(embedded["timing"]["points"]) == 3 and not embedded["timing"]["unranked"]
    assert embedded["rm"]["runs"] == ['run-{"n": 2, "p": 4}']
    assert embedded["rm"]["stale_fronts"] == ["front"]
    assert embedded["stale"] == [{"scope": "runs experiment=exp", "stale": True}]
    assert embedded == neo4j
