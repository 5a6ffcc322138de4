"""``ckg serve``: a real server process over a graph filled from the corpora, read over HTTP
and driven with a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

One graph and one server serve the whole module: the cm4mlops scripts, the SQuAD1.1 slice of
Papers with Code, the MLPerf records, three runs of the demo's grid, and a probe artifact whose
alias, tags, description and variation are HTML written to attack the page.
Screenshots of every page go to ``$CKG_SERVE_SCREENSHOTS`` or, without it, to a folder of the
test run (its path is printed in the test's report line). Every request goes as the owner's
browser sends it: signed in once through the URL the server printed, with its cookie after.
"""

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
from ckg.run.demo import EXAMPLE
from ckg.serve.app import PAGE_ROWS
from ckg.store.server import stop_server
from tests.serving import CKG, serve_env, start_serve, stop_serve

#: Debian's chromedriver: Selenium Manager cannot download one on an offline machine.
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
GRID = [{"model": "knn", "k": 1}, {"model": "logreg", "C": 1.0}, {"model": "bayes"}]
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


@pytest.fixture(scope="module")
def home(tmp_path_factory, corpora):
    """A private CKG_HOME with the module's graph in its embedded store."""
    path = tmp_path_factory.mktemp("serve-home")
    probe = _write_probe(tmp_path_factory.mktemp("probe"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CKG_HOME", str(path))
        mp.setenv("CKG_DB", "embedded")
        mp.delenv("NEO4J_URI", raising=False)
        with ckg.open("embedded", home=path) as kg:
            kg.ingest(str(corpora / "cm4mlops"))
            kg.import_results([str(corpora / "pwc" / "squad.json"), str(corpora / "mlperf")])
            kg.ingest(str(EXAMPLE))  # with its reference results, which the runs reproduce
            kg.run("sklearn-digits", grid=GRID)
            kg.ingest(str(probe))
    yield path
    stop_server(path)


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


def _get(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
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


# --- over HTTP ----------------------------------------------------------------------------


def test_every_page_has_a_json_twin(server):
    base, _ = server
    found = _api(base, "/artifacts", tags="get,python3,-conda")
    assert found["total"] == 1 and found["pages"] == 1
    assert [a["alias"] for a in found["artifacts"]] == ["get-python3"]
    same = json.loads(_get(base + "/artifacts?tags=get,python3,-conda&format=json")[2])
    assert same == found
    shown = _api(base, "/artifacts/get-python3")
    assert shown["artifact"]["uid"] == "d0b5dd74373f4a62"
    assert PROBE_ALIAS in {u["alias"] for u in shown["used_by"]}
    experiment = _api(base, "/experiments/sklearn-digits")
    assert experiment["front"]["objectives"] == ["accuracy:max", "latency:min"]
    assert len(experiment["front"]["rows"]) == len(GRID)
    board = _api(base, "/results/leaderboard", **SQUAD)
    values = [r["value"] for r in board["rows"]]
    assert board["direction"] == "max" and values == sorted(values, reverse=True)
    digits = _api(base, "/results/leaderboard", task="Image Classification", dataset="digits",
                  metric="accuracy")  # fmt: skip
    reproduced = {r["model"]: r["reproduced"] for r in digits["rows"]}
    assert len(reproduced["knn"]) == 1 and 0.9 < reproduced["knn"][0]["ratio"] < 1.1
    runs = _api(base, "/runs", experiment="sklearn-digits")["runs"]
    assert len(runs) == len(GRID)
    assert {"accuracy", "latency"} <= {m["metric"] for m in runs[0]["measurements"]}
    assert all(m["method"] for m in runs[0]["measurements"])
    pair = _api(base, "/runs/compare", run=[r["run"] for r in runs[:2]])
    assert pair["diff"]["params"]["changed"]
    platform = _api(base, "/platforms/" + quote(runs[0]["platform"], safe=""))
    assert {r["run"] for r in platform["runs"]} >= {r["run"] for r in runs}


def test_the_artifact_list_is_paged_and_next_shows_the_rest(server, home):
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


def test_a_leaderboard_is_paged_in_rank_order(server, home):
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
    assert _api(base, "/artifacts", tags="get,python3")["artifacts"]  # the graph is intact
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
    status, headers, body = _get(base + "/static/plotly.min.js")
    assert status == 200 and "javascript" in headers["content-type"] and "plotly" in body[:500]
    _, _, page = _get(base + "/experiments/sklearn-digits")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and not [s for s in sources if re.match(r"(https?:)?//", s)]


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


def _text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def test_each_page_loads_in_the_browser_without_console_errors(server, browser, shots):
    base, _ = server
    run = _api(base, "/runs", experiment="sklearn-digits")["runs"]
    pages = {
        "home": "/",
        "artifacts": "/artifacts",
        "runs": "/runs",
        "compare": "/runs/compare?" + urlencode({"run": [r["run"] for r in run[:2]]}, True),
        "run": "/runs/" + run[0]["run"],
        "experiments": "/experiments",
        "results": "/results",
        "mlperf-front": "/results/front?" + urlencode(IMAGENET),
        "platforms": "/platforms",
        "platform": "/platforms/" + quote(run[0]["platform"], safe=""),
    }
    drawn = {}
    for name, path in pages.items():
        _open(browser, base + path, shots, name)
        assert browser.find_element("css selector", "h1").text, path
        drawn[name] = browser.execute_script(
            "return document.querySelectorAll('.figure .scatterlayer .trace .point').length")
    assert drawn["mlperf-front"] >= 2  # the MLPerf throughput-power front
    assert not any(n for name, n in drawn.items() if name != "mlperf-front")


def test_a_tag_search_finds_get_python3(server, browser, shots):
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


def test_an_artifact_page_draws_its_dependency_graph(server, browser, shots):
    base, _ = server
    shown = _api(base, "/artifacts/app-image-classification-onnx-py")
    _open(browser, base + "/artifacts/app-image-classification-onnx-py", shots, "artifact")
    nodes = browser.execute_script(
        "return [...document.querySelectorAll('#graph .scatterlayer .trace:last-child .point')]"
        ".length")
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#graph .scatterlayer .trace:last-child text')]"
        ".map(t => t.textContent)")
    expected = {d["target_alias"] for d in shown["dependencies"]} | {shown["artifact"]["alias"]}
    assert nodes == len(shown["graph"]["data"][1]["x"]) > len(expected)
    assert expected <= set(labels)
    steps = [td.text for td in browser.find_elements("css selector", "#plan td:nth-child(2)")]
    assert len(steps) == len(shown["plan"]["steps"]) > 1
    assert steps[-1].startswith(shown["artifact"]["alias"])  # it runs after what it needs
    assert steps.index("get-python3") < steps.index("get-generic-python-lib _onnxruntime")


def test_runs_chosen_in_the_table_are_compared_side_by_side(server, browser, shots):
    base, _ = server
    _open(browser, base + "/runs?experiment=sklearn-digits", shots, "runs-filtered")
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
    models = [td.text for td in browser.find_elements(
        "xpath", "//table[@id='compare']//tr[th='model']/td")]
    assert sorted(models) == sorted(["knn", "bayes"])
    assert browser.find_element("css selector", "#diff").text  # what differs is listed


def test_the_demo_experiment_page_draws_its_front(server, browser, shots):
    base, _ = server
    _open(browser, base + "/experiments/sklearn-digits", shots, "experiment")
    points = browser.execute_script(
        "return document.querySelectorAll('#front-plot .scatterlayer .trace .point').length")
    line = browser.execute_script(
        "return document.querySelectorAll('#front-plot .scatterlayer .trace path.js-line')"
        ".length")
    assert points == len(GRID) and line == 1
    rows = browser.find_elements("css selector", "#front tbody tr")
    assert len(rows) == len(GRID)


def test_a_leaderboard_lists_results_best_first(server, browser, shots):
    base, _ = server
    _open(browser, base + "/results/leaderboard?" + urlencode(SQUAD), shots, "leaderboard")
    assert "higher is better" in browser.find_element("css selector", "#direction").text
    values, ranks = browser.execute_script(
        "const rows = [...document.querySelectorAll('#leaderboard tbody tr')];"
        "return [rows.map(r => Number(r.querySelector('td.value').dataset.value)),"
        "        rows.map(r => r.cells[0].textContent)]")
    assert len(values) > 10 and values == sorted(values, reverse=True)
    assert ranks == [str(i) for i in range(1, len(values) + 1)]


def test_html_in_metas_shows_as_text_on_every_page(server, browser, shots):
    from selenium.common.exceptions import NoAlertPresentException

    base, _ = server
    pages = {
        "xss-search": "/artifacts?tags=xss-probe",
        "xss-artifact": "/artifacts/0123456789abcdef",
        "xss-dependency": "/artifacts/get-python3",
    }
    for name, path in pages.items():
        _open(browser, base + path, shots, name)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - reading it is the check
        injected = browser.execute_script(
            "return document.querySelectorAll('img[src=x], img[onerror]').length + "
            "[...document.scripts].filter(s => s.textContent.includes('alert(')"
            " && s.type !== 'application/json').length")
        assert injected == 0, path
        text = _text(browser)
        if name != "xss-dependency":
            assert all(tag in text for tag in PROBE_TAGS), path
        if name == "xss-artifact":
            assert PROBE_DESCRIPTION in text and "_" + PROBE_VARIATION in text
        if name != "xss-search":
            graph = browser.execute_script(
                "return [...document.querySelectorAll('#graph text')].map(t => t.textContent)")
            assert PROBE_ALIAS in graph, path


def test_screenshots_of_every_page_are_saved(browser, shots):
    saved = {p.stem for p in shots.glob("*.png")}
    assert {"home", "artifact", "experiment", "leaderboard", "mlperf-front"} <= saved
    assert all(p.stat().st_size > 10_000 for p in shots.glob("*.png"))
