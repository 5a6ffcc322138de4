"""``ckg serve`` is its owner's alone: one test per class of attack, on a real server process
over a home holding one real run (its environment, command and log tail are what an
attacker is after).

The attackers: another local user (a real process as ``other_user``), a web page the owner
visits that rebinds its own name to 127.0.0.1 (its requests carry its own Host), and anyone
who sends requests too large to answer quickly.
"""

import http.client
import json
import re
import textwrap
from urllib.parse import urlencode, urlsplit

import pytest

import ckg
from ckg.serve.app import GRAPH_DEPTH
from ckg.store.server import connect, stop_server
from tests.serving import start_serve, stop_serve

#: What the run below leaves in the graph, none of which may reach anyone but its owner.
SECRETS = ("private-note", "private-output", "CM_LEAK_NOTE", "run.sh")
#: A published leaderboard whose paper links point at this machine: a listener there (another
#: local user's) would get the owner's cookie, which browsers send to every port of a host.
BOARD = {"task": "Probe Task", "dataset": "Probe", "metric": "F1"}
PAPERS = ["https://arxiv.org/abs/1706.03762", "http://127.0.0.1:9999/steal",
          "http://localhost:9999/steal", "http://2130706433:9999/steal"]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private home with one run of a local script that prints a line and has an env."""
    path = tmp_path_factory.mktemp("serve-security-home")
    repo = tmp_path_factory.mktemp("leak-repo")
    script = repo / "script" / "leak"
    script.mkdir(parents=True)
    (script / "_cm.yaml").write_text(
        textwrap.dedent("""\
        alias: leak
        uid: 2000000000000001
        automation_alias: script
        tags: [leak]
        default_env: {CM_LEAK_NOTE: private-note}
        """)
    )
    (script / "run.sh").write_text('#!/bin/bash\necho "log line private-output"\n')
    rows = [{"model_name": f"m{i}", "paper_title": f"paper {i}", "paper_url": url,
             "metrics": {"F1": str(90 - i)}} for i, url in enumerate(PAPERS)]  # fmt: skip
    board = [{"task": BOARD["task"], "datasets": [
        {"dataset": BOARD["dataset"], "sota": {"metrics": ["F1"], "rows": rows}}]}]  # fmt: skip
    papers = tmp_path_factory.mktemp("papers") / "board.json"
    papers.write_text(json.dumps(board))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CKG_HOME", str(path))
        mp.setenv("CKG_DB", "embedded")
        mp.delenv("NEO4J_URI", raising=False)
        with ckg.open("embedded", home=path) as kg:
            kg.ingest(str(repo))
            kg.run("leak")
            kg.import_results([str(papers)])
    yield path
    stop_server(path)


@pytest.fixture(scope="module")
def served(home):
    log = home.parent / "serve.log"
    server = start_serve(home, log)
    yield server
    stop_serve(server, log)


def _request(base: str, path: str, *, headers=None, method="GET", body=None, timeout=30):
    """(status, headers, body text) of one request sent exactly as given (Host included)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read().decode()
    finally:
        conn.close()


def _owner(served, path: str, **kwargs):
    headers = {"Authorization": f"token {served.token}", **kwargs.pop("headers", {})}
    return _request(served.base, path, headers=headers, **kwargs)


def _run_uid(served) -> str:
    status, _, body = _owner(served, "/api/runs")
    assert status == 200, body
    [run] = json.loads(body)["runs"]
    return run["run"]


def test_another_local_user_without_the_token_reads_no_run(served, other_user):
    uid = _run_uid(served)
    status, _, body = _owner(served, "/api/runs/" + uid)
    assert status == 200 and all(s in body for s in SECRETS)  # the owner sees it all
    cookie = f"ckg-token-{urlsplit(served.base).port}={'x' * 43}"
    code = textwrap.dedent(f"""\
        import json, urllib.request, urllib.error
        base = {served.base!r}
        tries = {{"none": {{}}, "cookie": {{"Cookie": {cookie!r}}},
                 "header": {{"Authorization": "token guessed"}}}}
        out = {{}}
        for path in ("/api/runs/{uid}", "/runs/{uid}", "/api/runs", "/?token=guessed"):
            for name, headers in tries.items():
                req = urllib.request.Request(base + path, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as reply:
                        out[path + " " + name] = [reply.status, reply.read().decode()]
                except urllib.error.HTTPError as exc:
                    out[path + " " + name] = [exc.code, exc.read().decode()]
        print(json.dumps(out))
        """)
    done = other_user.python(code)
    assert done.returncode == 0, done.stderr
    for what, (status, body) in json.loads(done.stdout).items():
        assert status == 403, what
        assert not [s for s in SECRETS if s in body], what
        assert "token" in body, what  # it says what is missing


def test_the_printed_url_signs_in_with_a_strict_httponly_cookie(served):
    parts = urlsplit(served.url)
    assert parts.hostname == "127.0.0.1" and served.token and len(served.token) >= 32
    status, headers, _ = _request(served.base, f"{parts.path}?{parts.query}")
    assert status == 303 and headers["location"] == "/"  # the token leaves the address bar
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    name_value = cookie.split(";")[0]
    status, _, body = _request(served.base, "/runs", headers={"Cookie": name_value})
    assert status == 200 and "leak" in body
    forged = name_value[:-1] + ("A" if name_value[-1] != "A" else "B")
    status, _, _ = _request(served.base, "/runs", headers={"Cookie": forged})
    assert status == 403


def test_a_foreign_host_header_is_refused_even_with_the_token(served):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1."""
    uid = _run_uid(served)
    port = urlsplit(served.base).port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", ""):
        status, _, body = _owner(served, "/api/runs/" + uid, headers={"Host": host})
        assert status == 400, host
        assert not [s for s in SECRETS if s in body], host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert _owner(served, "/api/runs", headers={"Host": host})[0] == 200, host


def _graph_queries(home, served, path: str) -> tuple[int, tuple[int, str]]:
    """The graph queries that the owner's request for ``path`` made the store answer, and
    the reply's (status, JSON error)."""
    before = _graph_calls(home)
    status, _, body = _owner(served, path)
    return _graph_calls(home) - before, (status, json.loads(body).get("error", ""))


def _graph_calls(home) -> int:
    """How many graph queries the store of ``home`` has answered so far."""
    conn = connect(home)
    try:
        stats = conn.call("INFO", "commandstats")
    finally:
        conn.close()
    return sum(int(n) for n in re.findall(r"^cmdstat_graph\.\w+:calls=(\d+)", stats, re.M))


def test_thousands_of_runs_or_variations_in_one_request_are_refused_at_once(served, home):
    """3,000 ids to compare held the whole web view for seconds (10,000 variations to plan,
    too); more than the limit is a 400 naming it, said before that work: no run is looked
    up, no variation planned (the page shows the artifact and its graph first)."""
    short = _run_uid(served)[:12]  # a run's unique start, as ckg show takes it
    none, said = _graph_queries(home, served, "/api/runs/compare")
    assert said[0] == 400 and "choose runs" in said[1]
    many, said = _graph_queries(home, served, "/api/runs/compare?" + urlencode(
        {"run": [short] * 3000}, doseq=True))  # fmt: skip
    assert said[0] == 400 and "at most 50 runs" in said[1]
    assert many == none, "the runs were looked up before the request was refused"
    status, _, body = _owner(served, "/api/runs?limit=100000000")
    assert status == 400 and "at most 1000" in json.loads(body)["error"]
    with ckg.open("embedded", home=home) as kg:
        before = _graph_calls(home)
        uid = kg.show("leak")["artifact"]["uid"]
        kg.deps(uid, depth=GRAPH_DEPTH), kg.deps(uid, depth=1, reverse=True)
        shown = _graph_calls(home) - before
    chosen = ",".join(f"v{i}" for i in range(10_000))
    many, said = _graph_queries(home, served, "/api/artifacts/leak?variations=" + chosen)
    assert said[0] == 400 and "at most 50 variations" in said[1]
    assert many <= shown, "the variations were planned before the request was refused"


def test_an_oversized_url_or_a_request_body_is_refused(served):
    status, _, body = _owner(served, "/api/artifacts?tags=" + "x," * 40_000)
    assert status == 414 and "65536" in body
    # A body announced (a gigabyte, or chunks without end) is refused before any of it is read.
    parts = urlsplit(served.base)
    for name, value in (("Content-Length", "1000000000"), ("Transfer-Encoding", "chunked")):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.putrequest("GET", "/api/runs")
        conn.putheader("Authorization", f"token {served.token}")
        conn.putheader(name, value)
        conn.endheaders()
        reply = conn.getresponse()
        assert reply.status == 413 and "no request body" in reply.read().decode(), name
        conn.close()


def test_a_published_link_to_this_machine_is_shown_as_text(served):
    status, _, page = _owner(served, "/results/leaderboard?" + urlencode(BOARD))
    assert status == 200 and all(f"paper {i}" in page for i in range(len(PAPERS)))
    links = re.findall(r'href="(https?://[^"]*)"', page)
    assert links == [PAPERS[0]]
