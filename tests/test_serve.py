"""``ckg serve``: a real server process over a graph filled from the demo and the corpora,
read over HTTP and driven with a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``).

One graph and one server serve the whole module: two experiments of the demo's example that
share its name (three runs of its grid, then one), a script measuring a metric that has no
direction (two runs), a probe artifact whose alias, tags, description and variation are HTML
written to attack the page; and where the corpora are (the ``corpora`` fixture), the cm4mlops
scripts, the SQuAD1.1 slice of Papers with Code and the MLPerf records. Tests of what only the
corpora have skip without them, saying so.
Screenshots of every page go to ``$CKG_SERVE_SCREENSHOTS`` or, without it, to a folder of the
test run (its path is printed in the test's report line). Every request goes as the owner's
browser sends it: signed in once through the URL the server printed, with its cookie after.
"""

import gzip
import html
import http.cookiejar
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

import ckg
from ckg.core.values import format_number, human_unit
from ckg.pareto import no_direction
from ckg.run.demo import EXAMPLE
from ckg.serve.app import PAGE_ROWS
from ckg.store.server import stop_server
from tests.serving import CKG, serve_env, start_serve, stop_serve

#: Debian's chromedriver: Selenium Manager cannot download one on an offline machine.
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
GRID = [{"model": "knn", "k": 1}, {"model": "logreg", "C": 1.0}, {"model": "bayes"}]
#: A CM script whose result is a metric the registry gives no direction.
WIDGETS_META = """alias: count-widgets
uid: 2000000000000001
automation_alias: script
tags: [count, widgets]
"""
PROBE_ALIAS = "xss-probe<img src=x onerror=alert(6)>"
PROBE_TAGS = ["xss-probe", "<script>alert(1)</script>", '"><img src=x onerror=alert(2)>']
PROBE_DESCRIPTION = 'A probe <script>alert(3)</script> and "><img src=x onerror=alert(4)>'
PROBE_VARIATION = '"><img src=x onerror=alert(5)>'
SQUAD = {"task": "Question Answering", "dataset": "SQuAD1.1", "metric": "f1"}
IMAGENET = {"task": "Image Classification", "dataset": "ImageNet"}


def _write_probe(folder: Path) -> Path:
    """A CM script whose metadata is HTML meant to run in the page; it depends on
    get-python3, so it is drawn on get-python3's page too."""
    import yaml

    script = folder / "script" / "xss-probe"
    script.mkdir(parents=True)
    meta = {"alias": PROBE_ALIAS, "automation_alias": "script",
            "automation_uid": "5b4e0237da074764", "uid": "0123456789abcdef",
            "tags": PROBE_TAGS, "description": PROBE_DESCRIPTION,
            "deps": [{"tags": "get,python3"}], "variations": {PROBE_VARIATION: {}}}  # fmt: skip
    (script / "_cm.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    return folder


def _write_widgets(folder: Path) -> Path:
    """A CM repository of one script that reports ``{"Widgets": 3}``."""
    script = folder / "script" / "count-widgets"
    script.mkdir(parents=True)
    (folder / "cmr.yaml").write_text("alias: widgets-repo\nuid: 2000000000000000\n")
    (script / "_cm.yaml").write_text(WIDGETS_META)
    (script / "run.sh").write_text("#!/bin/bash\nprintf '{\"Widgets\": 3}' > cm-result.json\n")
    return folder


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, request):
    """A private CKG_HOME with the module's graph in its embedded store, and the corpora's
    path where it was loaded from them (None, with why, where they are absent)."""
    try:
        corpora, why = request.getfixturevalue("corpora"), ""
    except pytest.skip.Exception as absent:
        corpora, why = None, str(absent)
    path = tmp_path_factory.mktemp("serve-home")
    probe = _write_probe(tmp_path_factory.mktemp("probe"))
    widgets = _write_widgets(tmp_path_factory.mktemp("widgets"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CKG_HOME", str(path))
        mp.setenv("CKG_DB", "embedded")
        mp.delenv("NEO4J_URI", raising=False)
        with ckg.open("embedded", home=path) as kg:
            if corpora:
                kg.ingest(str(corpora / "cm4mlops"))
                kg.import_results([str(corpora / "pwc" / "squad.json"),
                                   str(corpora / "mlperf")])  # fmt: skip
            kg.ingest(str(EXAMPLE))  # with its reference results, which the runs reproduce
            kg.run("sklearn-digits", grid=GRID)
            kg.run("sklearn-digits", grid=GRID[:1])  # a second experiment of the same name
            kg.ingest(str(widgets))
            for _ in range(2):
                kg.run("count-widgets", experiment="widgets")
            kg.ingest(str(probe))
    yield path, corpora, why
    stop_server(path)


@pytest.fixture(scope="module")
def home(loaded) -> Path:
    return loaded[0]


@pytest.fixture(scope="module")
def with_corpora(loaded) -> Path:
    """The corpora the module's graph holds, or a skip saying why it holds none."""
    if loaded[1] is None:
        pytest.skip(loaded[2])
    return loaded[1]


#: The owner's HTTP client: it keeps the cookie the printed URL sets, as a browser does.
OWNER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


@pytest.fixture(scope="module")
def served(home):
    """``ckg serve`` on a free port, as a user starts it, with the owner signed in."""
    server = start_serve(home, home / "serve.log")
    OWNER.open(server.url, timeout=30).read()
    yield server
    stop_serve(server, home / "serve.log")


@pytest.fixture(scope="module")
def server(served):
    """The base URL and the process of the module's server."""
    return served.base, served.proc


def _get(url: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with OWNER.open(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _api(base: str, path: str, **query):
    query_text = "?" + urlencode(query, doseq=True) if query else ""
    status, _, body = _get(base + "/api" + path + query_text)
    assert status == 200, body
    return json.loads(body)


def _experiment(base: str, name: str = "sklearn-digits", runs: int = len(GRID)) -> dict:
    """The experiment of ``name`` that holds ``runs`` runs (names are shared: the demo's)."""
    [found] = [e for e in _api(base, "/experiments")["experiments"]
               if e["name"] == name and e["runs"] == runs]  # fmt: skip
    return found


# --- over HTTP ----------------------------------------------------------------------------


def test_every_page_has_a_json_twin(server, with_corpora):
    base, _ = server
    found = _api(base, "/artifacts", tags="get,python3,-conda")
    assert found["total"] == 1 and found["pages"] == 1
    assert [a["alias"] for a in found["artifacts"]] == ["get-python3"]
    same = json.loads(_get(base + "/artifacts?tags=get,python3,-conda&format=json")[2])
    assert same == found
    shown = _api(base, "/artifacts/get-python3")
    assert shown["artifact"]["uid"] == "d0b5dd74373f4a62"
    assert PROBE_ALIAS in {u["alias"] for u in shown["used_by"]}
    demo = _experiment(base)["uid"]
    experiment = _api(base, "/experiments/" + demo)
    assert experiment["front"]["objectives"] == ["accuracy:max", "latency:min"]
    assert len(experiment["front"]["rows"]) == len(GRID)
    board = _api(base, "/results/leaderboard", **SQUAD)
    values = [r["value"] for r in board["rows"]]
    assert board["direction"] == "max" and values == sorted(values, reverse=True)
    digits = _api(base, "/results/leaderboard", task="Image Classification", dataset="digits",
                  metric="accuracy")  # fmt: skip
    reproduced = {r["model"]: r["reproduced"] for r in digits["rows"]}
    assert len(reproduced["knn"]) == 2  # by both experiments' knn runs
    assert all(0.9 < r["ratio"] < 1.1 for r in reproduced["knn"])
    runs = _api(base, "/runs", experiment=demo)["runs"]
    assert len(runs) == len(GRID)
    assert {"accuracy", "latency"} <= {m["metric"] for m in runs[0]["measurements"]}
    assert all(m["method"] for m in runs[0]["measurements"])
    pair = _api(base, "/runs/compare", run=[r["run"] for r in runs[:2]])
    assert pair["diff"]["params"]["changed"]
    platform = _api(base, "/platforms/" + quote(runs[0]["platform"], safe=""))
    assert {r["run"] for r in platform["runs"]} >= {r["run"] for r in runs}


def test_the_artifact_list_is_paged_and_next_shows_the_rest(server, home, with_corpora):
    """/artifacts shows one page and says so; following "next" to the end lists every
    artifact once."""
    base, _ = server
    with ckg.open("embedded", home=home) as kg:
        every = {a["uid"] for a in kg.find("")}
    status, _, body = _get(base + "/artifacts")
    assert status == 200
    assert f"showing 1–{PAGE_ROWS} of {len(every)} artifacts" in body
    assert body.count('<tr><td><a href="/artifacts/') == PAGE_ROWS
    seen, path = [], "/artifacts"
    while path:
        status, _, body = _get(base + path.replace("&amp;", "&"))
        assert status == 200
        seen += re.findall(r'<tr><td><a href="/artifacts/([^"]+)"', body)
        path = (re.findall(r'<a rel="next" href="([^"]+)"', body) or [None])[0]
    assert len(seen) == len(every) and set(seen) == every
    assert '<a rel="prev"' in body
    last = _api(base, "/artifacts", page=len(seen) // PAGE_ROWS + 1)
    assert last["page"] == last["pages"] and len(last["artifacts"]) == len(every) % PAGE_ROWS


def test_a_leaderboard_is_paged_in_rank_order(server, home, with_corpora):
    """A leaderboard shows PAGE_ROWS results a page; its pages in turn are the whole
    comparison, best first, and the page says which rows of how many it shows."""
    base, _ = server
    with ckg.open("embedded", home=home) as kg:
        ranked = list(kg.compare(SQUAD["task"], SQUAD["dataset"], SQUAD["metric"])["result"])
    assert len(ranked) > PAGE_ROWS  # else there is no second page to show
    first = _api(base, "/results/leaderboard", **SQUAD)
    assert (first["total"], len(first["rows"])) == (len(ranked), PAGE_ROWS)
    pages = [first] + [_api(base, "/results/leaderboard", **SQUAD, page=p)
                       for p in range(2, first["pages"] + 1)]  # fmt: skip
    assert [r["result"] for p in pages for r in p["rows"]] == ranked
    status, _, body = _get(base + "/results/leaderboard?" + urlencode({**SQUAD, "page": 2}))
    assert status == 200
    assert f"showing {PAGE_ROWS + 1}–{min(2 * PAGE_ROWS, len(ranked))} of {len(ranked)}" in body
    assert '<a rel="prev"' in body


def test_it_is_read_only_and_local(server):
    base, proc = server
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = _get(base + "/artifacts", method)
        assert status == 405, method
    status, _, _ = _get(base + "/api/query?cypher=" + quote("MATCH (n) DETACH DELETE n"))
    assert status == 404
    assert _api(base, "/artifacts", tags="count,widgets")["artifacts"]  # the graph is intact
    import psutil

    listening = [c.laddr for c in psutil.Process(proc.pid).net_connections()
                 if c.status == psutil.CONN_LISTEN]  # fmt: skip
    assert listening and all(a.ip == "127.0.0.1" for a in listening)
    _, headers, _ = _get(base + "/")
    assert "script-src 'self'" in headers["content-security-policy"]


def test_unknown_names_and_missing_parameters_say_what_is_wrong(server):
    base, _ = server
    status, _, body = _get(base + "/api/artifacts/no-such-thing")
    assert status == 404
    assert json.loads(body) == {"error": "no artifact with alias or uid 'no-such-thing'"}
    status, _, body = _get(base + "/experiments/no-such-experiment")
    assert status == 404 and "no experiment &#39;no-such-experiment&#39;" in body
    assert "sklearn-digits" in body  # the experiments there are
    status, _, body = _get(base + "/api/results/leaderboard?task=Question%20Answering")
    assert status == 400 and "needs task, dataset and metric" in json.loads(body)["error"]
    status, _, body = _get(base + "/api/runs/compare")
    assert status == 400 and "choose runs to compare" in json.loads(body)["error"]
    status, _, body = _get(base + "/api/artifacts?tags=get,python3,")
    assert status == 400 and "'get,python3,' hold an empty tag" in json.loads(body)["error"]


def test_a_busy_port_or_foreign_address_is_one_line_naming_it(server, home):
    port = server[0].rsplit(":", 1)[1]
    for args, reason in ((["--port", port], f"127.0.0.1:{port}: address already in use"),
                         (["--host", "192.0.2.1", "--port", port],
                          f"192.0.2.1:{port}: cannot assign requested address")):  # fmt: skip
        done = subprocess.run([str(CKG), "serve", *args], env=serve_env(home), capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.splitlines() == [f"ckg: error: cannot listen on {reason}"]


def test_the_scripts_ship_with_the_package(server):
    base, _ = server
    _, _, page = _get(base + "/experiments/" + _experiment(base)["uid"])
    plotly = re.search(r'data-plotly="([^"]+)"', page).group(1)
    status, headers, body = _get(base + plotly)
    assert status == 200 and "javascript" in headers["content-type"] and "plotly" in body[:500]
    sources = re.findall(r'(?:src|href|data-plotly)="([^"]+)"', page)
    assert sources and not [s for s in sources if re.match(r"(https?:)?//", s)]


@pytest.fixture(scope="module")
def crawled(server) -> dict[str, int]:
    """Every page reachable by links from the home page (paths of this server, its static
    files left out), with the status it answered."""
    base, _ = server
    found, todo = {}, ["/"]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        status, _, body = _get(base + path)
        found[path] = status
        for link in re.findall(r'href="(/[^"]*)"', body):
            link = html.unescape(link)
            if not link.startswith(("//", "/static/")) and link not in found:
                todo.append(link)
    return found


def test_every_link_from_the_home_page_answers_200(server, crawled):
    base, _ = server
    broken = {path: status for path, status in crawled.items() if status != 200}
    assert not broken
    experiments = _api(base, "/experiments")["experiments"]
    assert len(experiments) >= 3
    assert {"/experiments/" + quote(e["uid"], safe="") for e in experiments} <= set(crawled)
    runs = _api(base, "/runs")["runs"]
    assert {"/runs/" + quote(r["run"], safe="") for r in runs} <= set(crawled)


def test_every_link_into_the_corpora_answers_200(crawled, with_corpora):
    assert "/artifacts/d0b5dd74373f4a62" in crawled  # get-python3, by uid as linked
    boards = [p for p in crawled if p.startswith("/results/leaderboard?")]
    assert len(boards) > 10 and any("page=2" in p for p in boards)
    assert any(p.startswith("/results/front?") for p in crawled)
    assert all(crawled[p] == 200 for p in crawled)


def test_experiments_that_share_a_name_each_have_their_page(server):
    """Each experiment's page lists its own runs, and each run's page names the experiment
    that holds it; the shared name alone is a 400 naming both."""
    base, _ = server
    same = [e for e in _api(base, "/experiments")["experiments"] if e["name"] == "sklearn-digits"]
    assert sorted(e["runs"] for e in same) == [1, len(GRID)]
    for e in same:
        page = _api(base, "/experiments/" + e["uid"])
        assert page["experiment"]["uid"] == e["uid"] and len(page["runs"]) == e["runs"]
        for run in page["runs"]:
            assert _api(base, "/runs/" + run["run"])["experiment_uid"] == e["uid"]
    status, _, body = _get(base + "/api/experiments/sklearn-digits")
    assert status == 400 and all(e["uid"] in json.loads(body)["error"] for e in same)


def test_a_metric_without_a_direction_lists_the_runs_and_says_why_unranked(server):
    base, _ = server
    widgets = _experiment(base, "widgets", 2)
    page = _api(base, "/experiments/" + widgets["uid"], x="widgets", y="runtime")
    assert page["why"] == no_direction("widgets") and page["figure"] is None
    assert len(page["runs"]) == 2 and len(page["front"]["rows"]) == 2  # listed, unranked
    status, _, body = _get(base + f"/experiments/{widgets['uid']}?x=widgets&y=runtime")
    assert status == 200 and "unranked: no direction known for metric" in body
    assert body.count('<td><a href="/runs/') == 2


def test_run_tables_show_metrics_in_the_units_of_the_cli(server):
    """latency in µs and memory in MB with four digits, as ``ckg run`` prints them, not
    7.438e-05 s and 168951808 B."""
    base, _ = server
    demo = _experiment(base)["uid"]
    runs = _api(base, "/runs", experiment=demo)["runs"]
    _, _, body = _get(base + "/runs?experiment=" + demo)
    for metric, raw in (("latency", "s"), ("memory", "B")):
        values = [m["value"] for r in runs for m in r["measurements"] if m["metric"] == metric]
        factor, unit = human_unit(values, raw)
        assert unit != raw and f">{metric} ({unit})</th>" in body
        assert all(f">{format_number(v / factor)} <small" in body for v in values)


def test_a_comparison_marks_what_differs_and_diffs_provenance_in_a_table(server):
    base, _ = server
    runs = _api(base, "/runs", experiment=_experiment(base)["uid"])["runs"]
    by_model = {r["params"]["model"]: r["run"] for r in runs}
    query = urlencode({"run": [by_model["knn"], by_model["logreg"]]}, doseq=True)
    status, _, body = _get(base + "/runs/compare?" + query)
    assert status == 200
    marked = {name: bool(mark) for mark, name in re.findall(
        r'<tr( class="differs")?><th>([^<]+)</th>', body)}  # fmt: skip
    assert marked["model"] and marked["k"] and marked["C"] and marked["accuracy (%)"]
    assert not marked["status"] and not marked["experiment"] and not marked["artifact"]
    page = json.loads(_get(base + "/api/runs/compare?" + query)[2])
    assert {"field": "params", "key": "model", "a": "knn", "b": "logreg"} in page["provenance"]
    assert "<td>params</td><td>model</td>" in body and '<pre id="diff">' not in body


def test_pages_and_scripts_go_compressed_and_cached(server):
    """Pages and scripts go gzipped to a browser that takes it; plotly.js (4.8 MB) under a
    path naming its version, kept for good; the package's own files revalidated by ETag."""
    base, _ = server
    _, _, page = _get(base + "/experiments/" + _experiment(base)["uid"])
    plotly = re.search(r'data-plotly="(/static/plotly-[\d.]+\.min\.js)"', page).group(1)
    for path, content in (("/runs", b"<table"), (plotly, b"plotly")):
        request = urllib.request.Request(base + path, headers={"Accept-Encoding": "gzip"})
        with OWNER.open(request, timeout=30) as reply:
            assert reply.headers["content-encoding"] == "gzip", path
            sent, caching = reply.read(), reply.headers["cache-control"]
        assert content in gzip.decompress(sent), path
    assert "immutable" in caching and len(sent) < 2_000_000  # plotly.js: 4.8 MB as it is
    status, headers, _ = _get(base + "/static/ckg.js")
    assert status == 200 and headers["cache-control"] == "private, no-cache"
    status, _, _ = _get(base + "/static/ckg.js", headers={"If-None-Match": headers["etag"]})
    assert status == 304


# --- in a real browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(served):
    """Headless Chromium through Debian's chromedriver, signed in by opening the URL the
    server printed as a user does; or a skip saying what is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"no {' or '.join(missing)}: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-gpu"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.get(served.url)
    assert driver.current_url == served.base + "/"  # signed in, the token gone from the URL
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("CKG_SERVE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots of ckg serve: {path}")
    return path


def _open(driver, url: str, shots: Path, name: str):
    """Load ``url``, wait for its figures to be drawn, save a screenshot, and fail on any
    console message of warning level or worse."""
    driver.get(url)
    deadline = time.monotonic() + 20
    while not driver.execute_script(
        "return document.readyState === 'complete' && [...document.querySelectorAll("
        "'[data-figure]')].every(e => e.dataset.drawn === 'yes')"
    ):
        assert time.monotonic() < deadline, f"{url}: figures not drawn in 20 s"
        time.sleep(0.1)
    driver.save_screenshot(str(shots / f"{name}.png"))
    logged = [e for e in driver.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]
    assert not logged, f"{url}: {logged}"
    return driver


#: Whether the point a click on arguments[0] aims at, its centre, is on it and not on what
#: covers or clips it.
HIT_JS = """const r = arguments[0].getBoundingClientRect();
const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
return hit !== null && arguments[0].contains(hit);"""


def _click(driver, element) -> None:
    """Click ``element`` as a user does: scrolled into the middle of its scrolling box and
    of the window, once its centre is on it. Left to chromedriver's own scrolling, a click
    on a header of a table wider than its box once landed on the box's edge, on ``<main>``
    (x=964 of 1000), in a loaded run of the suite; it passed alone."""
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element
    )
    deadline = time.monotonic() + 20
    while not driver.execute_script(HIT_JS, element):
        assert time.monotonic() < deadline, f"{element.text!r} is covered or out of view"
        time.sleep(0.1)
    element.click()


def _text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def test_each_page_loads_in_the_browser_without_console_errors(server, browser, shots, loaded):
    base, _ = server
    run = _api(base, "/runs", experiment=_experiment(base)["uid"])["runs"]
    pages = {
        "home": "/",
        "artifacts": "/artifacts",
        "runs": "/runs",
        "compare": "/runs/compare?" + urlencode({"run": [r["run"] for r in run[:2]]}, True),
        "run": "/runs/" + run[0]["run"],
        "experiments": "/experiments",
        "results": "/results",
        "platforms": "/platforms",
        "platform": "/platforms/" + quote(run[0]["platform"], safe=""),
    }
    corpora = loaded[1] is not None
    if corpora:
        pages["mlperf-front"] = "/results/front?" + urlencode(IMAGENET)
    drawn = {}
    for name, path in pages.items():
        _open(browser, base + path, shots, name)
        assert browser.find_element("css selector", "h1").text, path
        drawn[name] = browser.execute_script(
            "return document.querySelectorAll('.figure .scatterlayer .trace .point').length"
        )
    assert not corpora or drawn["mlperf-front"] >= 2  # the MLPerf throughput-power front
    assert not any(n for name, n in drawn.items() if name != "mlperf-front")


def test_a_tag_search_finds_get_python3(server, browser, shots, with_corpora):
    base, _ = server
    _open(browser, base + "/", shots, "home")
    box = browser.find_element("css selector", "header .search input")
    box.send_keys("get,python3,-conda\n")
    deadline = time.monotonic() + 10
    while "/artifacts?" not in browser.current_url:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _open(browser, browser.current_url, shots, "search")
    links = browser.find_elements("css selector", "#artifacts tbody a")
    assert [a.text for a in links] == ["get-python3"]


def test_an_artifact_page_draws_its_dependency_graph(server, browser, shots, with_corpora):
    base, _ = server
    shown = _api(base, "/artifacts/app-image-classification-onnx-py")
    _open(browser, base + "/artifacts/app-image-classification-onnx-py", shots, "artifact")
    nodes = browser.execute_script(
        "return [...document.querySelectorAll('#graph .scatterlayer .trace:last-child .point')]"
        ".length"
    )
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#graph .scatterlayer .trace:last-child text')]"
        ".map(t => t.textContent)"
    )
    expected = {d["target_alias"] for d in shown["dependencies"]} | {shown["artifact"]["alias"]}
    assert nodes == len(shown["graph"]["data"][1]["x"]) > len(expected)
    assert expected <= set(labels)
    steps = [td.text for td in browser.find_elements("css selector", "#plan td:nth-child(2)")]
    assert len(steps) == len(shown["plan"]["steps"]) > 1
    assert steps[-1].startswith(shown["artifact"]["alias"])  # it runs after what it needs
    assert steps.index("get-python3") < steps.index("get-generic-python-lib _onnxruntime")


def test_runs_chosen_in_the_table_are_compared_side_by_side(server, browser, shots):
    base, _ = server
    _open(browser, base + "/runs?experiment=" + _experiment(base)["uid"], shots, "runs-filtered")
    boxes = browser.find_elements("css selector", "#runs input[type=checkbox]")
    assert len(boxes) == len(GRID)
    boxes[0].click()
    boxes[2].click()
    browser.find_element("css selector", "#compare").click()
    deadline = time.monotonic() + 10
    while "/runs/compare?" not in browser.current_url:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    _open(browser, browser.current_url, shots, "compare-chosen")
    columns = browser.find_elements("css selector", "#compare thead th a")
    assert len(columns) == 2
    models = [
        td.text
        for td in browser.find_elements("xpath", "//table[@id='compare']//tr[th='model']/td")
    ]
    assert sorted(models) == sorted(["knn", "bayes"])
    assert browser.find_element("css selector", "#diff").text  # what differs is listed


def test_the_demo_experiment_page_draws_its_front(server, browser, shots):
    base, _ = server
    _open(browser, base + "/experiments/" + _experiment(base)["uid"], shots, "experiment")
    points = browser.execute_script(
        "return document.querySelectorAll('#front-plot .scatterlayer .trace .point').length"
    )
    line = browser.execute_script(
        "return document.querySelectorAll('#front-plot .scatterlayer .trace path.js-line').length"
    )
    assert points == len(GRID) and line == 1
    rows = browser.find_elements("css selector", "#front tbody tr")
    assert len(rows) == len(GRID)


def test_a_leaderboard_lists_results_best_first(server, browser, shots, with_corpora):
    base, _ = server
    _open(browser, base + "/results/leaderboard?" + urlencode(SQUAD), shots, "leaderboard")
    assert "higher is better" in browser.find_element("css selector", "#direction").text
    values, ranks = browser.execute_script(
        "const rows = [...document.querySelectorAll('#leaderboard tbody tr')];"
        "return [rows.map(r => Number(r.querySelector('td.value').dataset.value)),"
        "        rows.map(r => r.cells[0].textContent)]"
    )
    assert len(values) > 10 and values == sorted(values, reverse=True)
    assert ranks == [str(i) for i in range(1, len(values) + 1)]


def test_html_in_metas_shows_as_text_on_every_page(server, browser, shots, loaded):
    from selenium.common.exceptions import NoAlertPresentException

    base, _ = server
    pages = {
        "xss-search": "/artifacts?tags=xss-probe",
        "xss-artifact": "/artifacts/0123456789abcdef",
    }
    if loaded[1] is not None:  # the probe's dependency, get-python3, is the corpora's
        pages["xss-dependency"] = "/artifacts/get-python3"
    for name, path in pages.items():
        _open(browser, base + path, shots, name)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - reading it is the check
        injected = browser.execute_script(
            "return document.querySelectorAll('img[src=x], img[onerror]').length + "
            "[...document.scripts].filter(s => s.textContent.includes('alert(')"
            " && s.type !== 'application/json').length"
        )
        assert injected == 0, path
        text = _text(browser)
        if name != "xss-dependency":
            assert all(tag in text for tag in PROBE_TAGS), path
        if name == "xss-artifact":
            assert PROBE_DESCRIPTION in text and "_" + PROBE_VARIATION in text
        if name != "xss-search":
            graph = browser.execute_script(
                "return [...document.querySelectorAll('#graph text')].map(t => t.textContent)"
            )
            assert PROBE_ALIAS in graph, path


def test_screenshots_of_every_page_are_saved(server, browser, shots, loaded):
    """The pages docs/serve.md shows are saved, by this test itself: it counted on the
    screenshots of tests that had run before it, and failed alone or where they skipped."""
    base, _ = server
    pages = {"home": "/", "experiment": "/experiments/" + _experiment(base)["uid"],
             "artifact": "/artifacts/ckg-example-sklearn-digits"}  # fmt: skip
    if loaded[1] is not None:
        pages.update({"artifact": "/artifacts/app-image-classification-onnx-py",
                      "leaderboard": "/results/leaderboard?" + urlencode(SQUAD),
                      "mlperf-front": "/results/front?" + urlencode(IMAGENET)})  # fmt: skip
    for name, path in pages.items():
        _open(browser, base + path, shots, name)
    sizes = {name: (shots / f"{name}.png").stat().st_size for name in pages}
    assert all(size > 10_000 for size in sizes.values()), sizes


#: Whatever a figure (its box and plotly's drawing) overlaps on the page, or draws outside
#: its box: elements neither inside the figure nor around it, by their bounding rectangles.
OVERLAPS_JS = """
const rect = (e) => e.getBoundingClientRect();
const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 &&
                      a.top < b.bottom - 1 && b.top < a.bottom - 1;
const found = [];
for (const figure of document.querySelectorAll('.figure')) {
  const box = rect(figure);
  const drawn = [...figure.querySelectorAll('svg.main-svg')].map(rect);
  for (const d of drawn) {
    if (d.bottom > box.bottom + 1 || d.right > box.right + 1) {
      found.push(`${figure.id} draws ${d.width}x${d.height} in a ${box.width}x${box.height} box`);
    }
  }
  for (const e of document.querySelectorAll('body *')) {
    if (figure.contains(e) || e.contains(figure)) continue;
    const r = rect(e);
    if (r.width && r.height && [box, ...drawn].some((d) => hit(d, r))) {
      found.push(`${figure.id} overlaps ${e.tagName}#${e.id}.${e.className}`);
    }
  }
}
return found;
"""


HEIGHTS_JS = "return [...document.querySelectorAll('.figure')].map(f => f.offsetHeight)"


def test_plots_keep_their_place_after_a_resize(server, browser, shots):
    """After the window shrinks to 1000x700 each plot is as tall as before, as wide as the
    window lets it, and overlaps nothing (plotly's resize had shrunk it to 200 px, under
    the table that follows)."""
    base, _ = server
    pages = {"experiment-resized": "/experiments/" + _experiment(base)["uid"],
             "artifact-resized": "/artifacts/ckg-example-sklearn-digits"}  # fmt: skip
    try:
        for name, path in pages.items():
            browser.set_window_size(1400, 1000)
            _open(browser, base + path, shots, name)
            heights = browser.execute_script(HEIGHTS_JS)
            browser.set_window_size(1000, 700)
            deadline = time.monotonic() + 10
            while not browser.execute_script(  # plotly redraws on the window's resize event
                "return [...document.querySelectorAll('.figure')].every(f => "
                "Math.abs(f.querySelector('svg.main-svg').getBoundingClientRect().width"
                " - f.offsetWidth) < 3)"
            ):
                assert time.monotonic() < deadline, f"{path}: not redrawn in 10 s"
                time.sleep(0.1)
            time.sleep(0.3)  # plotly's relayout after the resize, if any, settles
            browser.save_screenshot(str(shots / f"{name}.png"))
            assert browser.execute_script(OVERLAPS_JS) == [], path
            assert browser.execute_script(HEIGHTS_JS) == heights, path
    finally:
        browser.set_window_size(1400, 1000)


def test_the_runs_table_sorts_by_a_metric_filters_and_fits_the_window(server, browser, shots):
    base, _ = server
    try:
        browser.set_window_size(1000, 700)
        _open(browser, base + "/runs", shots, "runs")
        page, window = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert page <= window  # a wide table scrolls inside its box, not the page
        header = browser.find_element("css selector", "#runs th[data-metric=accuracy]")
        column = browser.execute_script("return arguments[0].cellIndex", header)
        read = (
            "return [...document.querySelectorAll('#runs tbody tr')].map(r => "
            f"r.cells[{column}].dataset.value).map(v => v === undefined ? null : Number(v))"
        )
        for click, order in ((1, sorted), (2, lambda v: sorted(v, reverse=True))):
            _click(browser, header)
            values = browser.execute_script(read)
            measured = [v for v in values if v is not None]
            assert len(measured) == len(GRID) + 1, click
            assert values[: len(measured)] == order(measured), click  # the unmeasured last
        box = browser.find_element("css selector", "input[data-filter=runs]")
        box.send_keys("model=knn")
        shown = browser.execute_script(
            "return [...document.querySelectorAll('#runs tbody tr')].filter(r => !r.hidden)"
            ".map(r => r.textContent)"
        )
        assert len(shown) == 2 and all("model=knn" in text for text in shown)
    finally:
        browser.set_window_size(1400, 1000)
