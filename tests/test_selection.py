"""Several artifacts match a target: ckg chooses as MLCFlow does, says so, and lets the user
choose another.

CM's script repository (``cm4mlops``, metadata) and MLCFlow's (``mlperf-automations``, whole)
are ingested together into one graph, once per engine, as on a machine that has used both.
Every command runs as a real ``ckg`` process; its standard input is not a terminal (MLCFlow's
quiet mode) except where a pseudo-terminal stands for the user's, where MLCFlow would ask.
"""

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.store import open_store

BIN = Path(sys.executable).parent
CKG = str(BIN / "ckg")


@pytest.fixture(scope="module", params=["embedded", "neo4j"])
def graph(request, corpora, tmp_path_factory):
    """Both repositories in one graph; the environment that reaches it, and the sources."""
    home = tmp_path_factory.mktemp(f"selection-{request.param}")
    db = "embedded"
    if request.param == "neo4j":  # its credentials are in the environment from here on
        db = request.getfixturevalue("neo4j_uri")
        store = open_store(db)
        store.reset()
        store.close()
    env = {**os.environ, "CKG_HOME": str(home), "CKG_DB": db}
    env.pop("NEO4J_URI", None)
    env.pop("CKG_SOURCE_ORDER", None)
    cm, mlc = str(corpora / "cm4mlops"), str(corpora / "mlperf-automations")
    ckg(env, "ingest", cm, mlc, "--json")
    yield {"env": env, "cm": cm, "mlc": mlc, "home": home}
    subprocess.run([CKG, "db", "stop"], env=env, capture_output=True, timeout=60)


def ckg(env, *args, code=0, stdin=subprocess.DEVNULL):
    done = subprocess.run([CKG, *args], env=env, stdin=stdin, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == code, f"ckg {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def uid_of(env, source: str, alias: str) -> str:
    rows = json.loads(ckg(env, "find", "--tags", alias, "--json").stdout)
    return next(r["uid"] for r in rows if r["alias"] == alias and r["source"] == source)


def chose(stderr: str, target: str) -> str:
    """The line that names the choice."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"ckg: {target}: ")]
    assert len(lines) == 1, stderr
    return lines[0]


#: target, the alias both repositories hold for it, how many artifacts match it in all
TARGETS = [("detect,os", "detect-os", 2), ("get,python3", "get-python3", 2),
           ("get,compiler", "get-llvm", 9)]  # fmt: skip


@pytest.mark.parametrize("target, alias, matched", TARGETS, ids=[t[0] for t in TARGETS])
def test_plan_and_run_without_source_take_mlcflows_script_and_say_so(graph, target, alias, matched):
    env = graph["env"]
    mlc = uid_of(env, graph["mlc"], alias)
    planned = ckg(env, "plan", target, "--json")
    assert json.loads(planned.stdout)["target"] == mlc
    line = chose(planned.stderr, target)
    assert f"planning {alias} ({mlc}) from {graph['mlc']}" in line
    assert re.search(rf"also matched: .*\b{alias}\b[^()]*\({re.escape(graph['cm'])}\)", line)

    if target == "get,compiler":  # get-llvm installs LLVM from the network: shown, not run
        dry = ckg(env, "run", target, "--dry-run")
        assert f"running {alias} ({mlc}) from {graph['mlc']}" in chose(dry.stderr, target)
        return
    ran = ckg(env, "run", target, "--json")
    [run] = json.loads(ran.stdout)["runs"]
    assert run["status"] == "ok" and run["new_env"]
    assert all(k.lstrip("+").startswith(("MLC_", "PATH", "LD_", "C_")) for k in run["new_env"])
    assert f"running {alias} ({mlc}) from {graph['mlc']}" in chose(ran.stderr, target)
    shown = json.loads(ckg(env, "show", run["uid"], "--json").stdout)
    assert shown["artifact"]["uid"] == mlc


@pytest.mark.parametrize("target, alias, matched", TARGETS, ids=[t[0] for t in TARGETS])
def test_source_takes_the_other(graph, target, alias, matched):
    env = graph["env"]
    cm = uid_of(env, graph["cm"], alias)
    held_by = json.loads(ckg(env, "show", cm, "--json").stdout)["source"]["uid"]
    for source in ("cm4mlops", graph["cm"], held_by[:6]):  # folder name, location, uid start
        planned = ckg(env, "plan", target, "--source", source, "--json")
        assert json.loads(planned.stdout)["target"] == cm
        assert f"planning {alias} ({cm}) from {graph['cm']}" in chose(planned.stderr, target)
    if target == "get,compiler":
        dry = ckg(env, "run", target, "--source", "cm4mlops", "--dry-run")
        assert f"running {alias} ({cm}) from {graph['cm']}" in chose(dry.stderr, target)
    else:
        ran = ckg(env, "run", target, "--source", "cm4mlops", "--json")
        [run] = json.loads(ran.stdout)["runs"]
        shown = json.loads(ckg(env, "show", run["uid"], "--json").stdout)
        assert shown["artifact"]["uid"] == cm
    missing = ckg(env, "plan", target, "--source", "ck-env", code=2)
    assert (f"--source 'ck-env': none of the {matched} artifacts that match '{target}'"
            in missing.stderr)  # fmt: skip


def test_the_users_source_order_comes_first(graph):
    env = {**graph["env"], "CKG_SOURCE_ORDER": "cm4mlops,mlperf-automations"}
    cm = uid_of(env, graph["cm"], "detect-os")
    planned = ckg(env, "plan", "detect,os", "--json")
    assert json.loads(planned.stdout)["target"] == cm
    assert f"from {graph['cm']}" in chose(planned.stderr, "detect,os")


def mlcr_choice(corpora: Path, base: Path, tags: str) -> Path:
    """The folder of the script ``mlcr TAGS --quiet`` chooses (its debug log names it); its
    dependencies and native script are faked, so nothing is installed."""
    repos = base / "mlc-repos"
    env = {**os.environ, "MLC_REPOS": str(repos), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    if not repos.exists():
        subprocess.run([BIN / "mlc", "add", "repo", str(corpora / "mlperf-automations")],
                       env=env, cwd=base, stdin=subprocess.DEVNULL, capture_output=True,
                       check=True, timeout=300)  # fmt: skip
    done = subprocess.run([BIN / "mlcr", tags, "--quiet", "-v", "--fake_deps", "--fake_run"],
                          env=env, cwd=base, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    found = re.search(r"- Found script::\S+ \S+ in (\S+)", done.stderr)
    assert found, done.stderr[-3000:]
    return Path(found.group(1))


def test_get_compiler_as_a_target_is_what_mlcr_chooses(graph, corpora, tmp_path):
    if not (BIN / "mlcr").is_file():
        pytest.skip(f"mlcflow's mlcr is not installed beside {sys.executable}")
    env = graph["env"]
    planned = ckg(env, "plan", "get,compiler", "--json")
    [target] = [s for s in json.loads(planned.stdout)["steps"] if s["reason"] == "target"]
    theirs = mlcr_choice(corpora, tmp_path, "get,compiler")
    assert (target["alias"], target["path"]) == ("get-llvm", "script/get-llvm")
    assert theirs == corpora / "mlperf-automations" / target["path"]
    line = chose(planned.stderr, "get,compiler")
    assert f"planning get-llvm ({target['uid']}) from {graph['mlc']}" in line
    for alias in ("get-gcc", "get-cl", "get-aocc", "get-amdclang", "get-one-api"):
        assert alias in line


def test_a_dependency_is_chosen_by_the_same_rule_as_a_target(graph):
    env = graph["env"]
    target = json.loads(ckg(env, "plan", "get,compiler", "--json").stdout)["target"]
    # get-google-test depends on get,compiler; the run's engine orders its index alike
    plan = json.loads(
        ckg(env, "plan", "get,google-test", "--source", "mlperf-automations", "--json").stdout
    )
    entries = [a for a in plan["ambiguous"] if a["tags"] == ["get", "compiler"]]
    assert entries and {e["chosen"] for e in entries} == {"get-llvm"}
    assert [s["uid"] for s in plan["steps"] if s["alias"] == "get-llvm"] == [target]
    code = ("import json, sys, ckg; from pathlib import Path; "
            "from ckg.run.scripts.invoke import index_file; "
            "from ckg.run.scripts.index import load_index\n"
            "with ckg.open() as kg:\n"
            "    roots = {r['uid']: r['location'] for r in kg.sources()}\n"
            "    index = load_index(index_file(kg.store, kg.home, roots))\n"
            "print(index.find(['get', 'compiler'], [])[0].uid)")  # fmt: skip
    engine = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300, check=True)  # fmt: skip
    assert engine.stdout.strip() == target


def target_alias(done) -> str:
    """The plan's target step (its first step may be a dependency)."""
    [alias] = [s["alias"] for s in json.loads(done.stdout)["steps"] if s["reason"] == "target"]
    return alias


def test_where_mlcflow_would_ask_the_candidates_are_listed_unless_quiet(graph):
    env = graph["env"]
    leader, follower = pty.openpty()  # the user's terminal: MLCFlow asks there
    try:
        asked = ckg(env, "plan", "get,compiler", stdin=follower, code=2)
        [line] = asked.stderr.strip().splitlines()
        assert "'get,compiler' matches 6 scripts" in line and "--quiet" in line
        assert f"get-llvm, get-amdclang, get-aocc, get-gcc, get-one-api, get-cl ({graph['mlc']})" \
            in line  # fmt: skip
        quiet = ckg(env, "plan", "get,compiler", "--quiet", "--json", stdin=follower)
        assert target_alias(quiet) == "get-llvm"
        by_env = ckg(env, "plan", "get,compiler", "--env.MLC_QUIET=yes", "--json", stdin=follower)
        assert target_alias(by_env) == "get-llvm"
        # one MLCFlow script and one CM script: neither tool would ask
        ckg(env, "plan", "detect,os", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)


def test_find_deps_and_show_name_each_artifacts_source(graph):
    env = graph["env"]
    rows = json.loads(ckg(env, "find", "--tags", "get,python3", "--json").stdout)
    assert sorted(r["source"] for r in rows) == [graph["cm"], graph["mlc"]]
    lines = ckg(env, "find", "--tags", "get,python3").stdout.splitlines()
    assert [line.split()[3] for line in lines] == ["cm4mlops", "mlperf-automations"]
    tree = ckg(env, "deps", "get,python3", "--json")
    assert json.loads(tree.stdout)["uid"] == uid_of(env, graph["mlc"], "get-python3")
    assert "showing get-python3" in chose(tree.stderr, "get,python3")
    shown = json.loads(ckg(env, "show", "get-python3", "--source", "cm4mlops", "--json").stdout)
    assert shown["source"]["location"] == graph["cm"]


def test_the_web_views_artifact_list_shows_each_source(graph, tmp_path):
    if graph["env"]["CKG_DB"] != "embedded":
        pytest.skip("the web view is served from the embedded store here")
    from tests.serving import start_serve, stop_serve

    served = start_serve(graph["home"], tmp_path / "serve.log")
    try:
        import urllib.request

        request = urllib.request.Request(
            served.base + "/artifacts?tags=get,python3",
            headers={"Authorization": f"token {served.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            page = reply.read().decode()
    finally:
        stop_serve(served, tmp_path / "serve.log")
    cells = re.findall(r'<td class="source">([^<]*)</td>', page)
    assert sorted(cells) == [graph["cm"], graph["mlc"]]


def test_select_takes_the_lowest_meta_sort_among_tag_matches(store):
    """MLCFlow orders the scripts its tags found by their meta's ``sort`` before their folder:
    select reads the sort of the metas that have one (and no other meta)."""
    from ckg.graph.lookup import select

    store.upsert_nodes("Artifact", [
        {"key": "a1", "props": {"alias": "tool-a", "tags": ["get", "tool"],
                                "path": "script/tool-a", "meta": json.dumps({"uid": "a1"})}},
        {"key": "b2", "props": {"alias": "tool-b", "tags": ["get", "tool"],
                                "path": "script/tool-b",
                                "meta": json.dumps({"uid": "b2", "sort": -5})}},
    ])  # fmt: skip
    assert select(store, "get,tool").uid == "b2"
    assert select(store, "tool,get,-nothing").uid == "b2"
