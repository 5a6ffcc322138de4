"""Commands on Neo4j through the resident process (ckg.cli.resident), in real processes with
a real Neo4j, as ``tests/test_resident.py`` runs them on the embedded store.

What tells where a command ran and what it loaded: a workflow step walks its ancestors
(``/proc``) and notes which of them have pandas mapped. The Neo4j driver imports pandas (and
numpy, pyarrow) whenever they are installed, for conversions ckg never asks for: no ckg
process has it.
"""

import json
import os

import pytest

from ckg.store import open_store
from tests.test_resident import ckg, resident_of, start

STEP = (
    "import json, os, pathlib, sys\n"
    "ancestors, pid = [], os.getppid()\n"
    "while pid > 1:\n"
    "    ancestors.append(pid)\n"
    "    stat = pathlib.Path(f'/proc/{pid}/stat').read_text()\n"
    "    pid = int(stat.rsplit(')', 1)[1].split()[1])\n"
    "pandas = [a for a in ancestors if '/pandas/' in pathlib.Path(f'/proc/{a}/maps').read_text()]\n"
    "pathlib.Path(sys.argv[1]).write_text(json.dumps({'ancestors': ancestors, 'pandas': pandas}))\n"
)
WORKFLOW = (
    "alias: where\nuid: resident-neo4j-where\nkind: workflow\n"
    'run: "{python} {artifact_dir}/where.py {artifact_dir}/out.json"\n'
)


def test_a_neo4j_command_runs_in_a_child_of_the_resident_without_pandas(
    ckg_home, neo4j_uri, tmp_path, monkeypatch
):
    pytest.importorskip("pandas")  # what the driver would import is installed
    monkeypatch.setenv("CKG_DB", neo4j_uri)  # the resident is started on Neo4j too
    with open_store(neo4j_uri) as graph:
        graph.reset()
    folder = tmp_path / "where"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(WORKFLOW)
    (folder / "where.py").write_text(STEP)
    pid = resident_of(ckg_home)
    ingested = ckg("ingest", "./where", cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    seen, found = {}, {}
    for where in ("0", "1"):
        pid = resident_of(ckg_home)  # the same, unless ckg's files changed meanwhile
        proc = start("run", "where", cwd=tmp_path, env={"CKG_RESIDENT": where})
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen[where] = json.loads((folder / "out.json").read_text())
        found[where] = ckg("find", "--kind", "workflow", "--json", env={"CKG_RESIDENT": where})
        assert found[where].returncode == 0, found[where].stderr
    own, child = seen["0"]["ancestors"], seen["1"]["ancestors"]
    assert pid not in own
    assert pid in child
    command = child[child.index(pid) - 1]  # the resident's child that ran `ckg run`
    assert command not in own and command != os.getpid()
    # In the resident, its child and what they started; in the console script and its step.
    assert [a for a in seen["0"]["pandas"] if a in own[: own.index(os.getpid())]] == []
    assert seen["1"]["pandas"] == []
    assert found["0"].stdout == found["1"].stdout
    assert [a["uid"] for a in json.loads(found["1"].stdout)] == ["resident-neo4j-where"]
