"""The routes of ``ckg serve``: each reads through :class:`ckg.api.KnowledgeGraph` and renders
one Jinja2 template, or the same data as JSON under ``/api/...`` or with ``?format=json``.

Read-only by construction: every route is GET (HEAD), none writes, runs or takes Cypher.
Its owner's alone: :class:`ckg.serve.access.Guard` refuses every request without the token
or to another host name; what one request may ask for is bounded (its URL, the runs it
lists, compares or plans), as views run one at a time and a long one would hold the whole view.
Templates autoescape everything; figures go to the page as JSON in a non-executed script
element, and a Content-Security-Policy lets only the package's own scripts run.
"""

import functools
import gzip
import json
import math
import time
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ckg.core.errors import CkgError, NotFound, UsageError
from ckg.core.values import format_number, human_unit, is_number
from ckg.graph.browse import board_metrics
from ckg.serve import figures
from ckg.serve.access import Guard, offsite

HERE = Path(__file__).resolve().parent
#: plotly.js as the plotly Python package ships it: the page never reaches a CDN. Its path
#: names the version, so that a browser keeps it for good (4.8 MB, 1.5 MB compressed).
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
PLOTLY_PATH = f"/static/plotly-{version('plotly')}.min.js"
#: Responses of at least this many bytes go compressed to a browser that takes gzip.
GZIP_MIN = 1024
#: Deepest dependency level drawn on an artifact's page (its dependants: one level).
GRAPH_DEPTH = 2
#: Most runs compared side by side (columns of one table), most runs listed at once, most
#: variations chosen on an artifact's page (planning 10,000 takes seconds).
MAX_COMPARE = 50
MAX_RUNS = 1000
MAX_VARIATIONS = 50
#: Rows on one page of a long list (/artifacts, a leaderboard: at 100x the corpora tens of
#: thousands, which took seconds to read and render) and the last page one may ask for.
PAGE_ROWS = 100
MAX_PAGE = 1_000_000
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(kg, *, token: str, hosts: frozenset[str]) -> Starlette:
    """The web application over ``kg``; every page at its path and at ``/api`` + path,
    answered only to requests for one of ``hosts`` that carry ``token``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters.update(num=_num, params=_params_text, q=lambda s: quote(str(s), safe=""))
    env.filters["scale"] = lambda values, unit: human_unit(list(values), unit or "")
    env.globals.update(url=_url, offsite=lambda link: offsite(link, hosts), plotly_js=PLOTLY_PATH)
    pages = _pages(kg)

    def endpoint(view, template):
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            path = request.url.path
            as_json = path == "/api" or path.startswith("/api/") or (
                request.query_params.get("format") == "json")
            try:
                data, status = view(request), 200
            except NotFound as exc:
                data, status, template_used = {"error": str(exc)}, 404, "error.html"
            except CkgError as exc:
                data, status, template_used = {"error": str(exc)}, 400, "error.html"
            else:
                template_used = template
            if as_json:
                body, media = _json(data), "application/json"
            else:
                body = env.get_template(template_used).render(request=request, **data)
                media = "text/html"
            # The server's own time, which browsers' developer tools and bench/ show.
            elapsed = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return Response(body, status, media_type=media,
                            headers={**HEADERS, "Server-Timing": elapsed})  # fmt: skip

        return handle

    routes = []
    for path, (view, template) in pages.items():
        handle = endpoint(view, template)
        routes.append(Route(path, handle, methods=["GET"]))
        routes.append(Route("/api" + (path if path != "/" else ""), handle, methods=["GET"]))
    routes.append(Route(PLOTLY_PATH, _plotly_js, methods=["GET"]))
    routes.append(Mount("/static", _Static(directory=HERE / "static"), name="static"))
    # compresslevel 6: within 0.3% of 9's size on plotly.js, in three quarters of its time.
    return Starlette(routes=routes, middleware=[
        Middleware(Guard, token=token, hosts=hosts),
        Middleware(GZipMiddleware, minimum_size=GZIP_MIN, compresslevel=6)])  # fmt: skip


class _Static(StaticFiles):
    """The package's own style sheet and script: a browser asks again each time and gets a
    304 while their ETag holds (they change with ckg; plotly.js does not, see PLOTLY_PATH)."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update({**HEADERS, "Cache-Control": "private, no-cache"})
        return response


async def _plotly_js(request: Request) -> Response:
    headers = {**HEADERS, "Cache-Control": "private, max-age=31536000, immutable",
               "Vary": "Accept-Encoding"}  # fmt: skip
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=headers)
    return Response(_plotly_gzip(), media_type="text/javascript",
                    headers={**headers, "Content-Encoding": "gzip"})  # fmt: skip


@functools.cache
def _plotly_gzip() -> bytes:
    """plotly.js compressed once a process (0.5 s), not at each first visit."""
    return gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=6, mtime=0)


def _pages(kg) -> dict:
    """Path -> (view, template); a view takes the request and returns the page's data."""

    def home(request):
        return {"status": kg.status(), "experiments": kg.experiments()}

    def artifacts(request):
        q = request.query_params
        tags, kind, source = q.get("tags", ""), q.get("kind") or None, q.get("source") or None
        page = _count(q.get("page"), 1, MAX_PAGE)
        rows, total = kg.find_page(tags, kind, source=source, offset=(page - 1) * PAGE_ROWS,
                                   limit=PAGE_ROWS)  # fmt: skip
        return {"tags": tags, "kind": kind or "", "source": source or "", "artifacts": rows,
                **_paging(page, total), "sources": kg.sources()}

    def artifact(request):
        key = request.path_params["key"]
        shown = kg.show(key)
        uid = shown["artifact"]["uid"]
        graph = figures.dependency_graph(kg.deps(uid, depth=GRAPH_DEPTH, via=False),
                                         kg.deps(uid, depth=1, reverse=True, via=False))
        chosen = [v for v in request.query_params.get("variations", "").split(",") if v]
        if len(chosen) > MAX_VARIATIONS:
            raise UsageError(f"choose at most {MAX_VARIATIONS} variations ({len(chosen)} asked)")
        runs = kg.run_table(artifact=uid, limit=50)
        return {**shown, "runs": runs, "metrics": _metric_columns(runs),
                "graph": figures.graph_figure(graph, lambda u: "/artifacts/" + quote(u)),
                "graph_depth": GRAPH_DEPTH, "chosen": chosen, **_plan(kg, uid, chosen)}

    def runs(request):
        q = request.query_params
        filters = {k: q.get(k) or None for k in ("experiment", "artifact", "status", "platform")}
        rows = kg.run_table(**filters, limit=_count(q.get("limit"), 200, MAX_RUNS))
        return {"filters": filters, "runs": rows, "metrics": _metric_columns(rows)}

    def compare_runs(request):
        uids = request.query_params.getlist("run")
        if not uids:
            raise UsageError("choose runs to compare: /runs/compare?run=UID&run=UID")
        if len(uids) > MAX_COMPARE:
            raise UsageError(f"compare at most {MAX_COMPARE} runs at a time "
                             f"({len(uids)} asked)")  # fmt: skip
        shown = [kg.show_run(u) for u in uids]
        metrics = _metric_columns([{"measurements": s["measurements"]} for s in shown])
        page = {"runs": shown, "diff": None, "metrics": metrics,
                "params": sorted({k for s in shown for k in _dict(s["run"].get("params"))})}
        if len(uids) == 2:
            page["diff"] = kg.diff_runs(*uids)
            page["provenance"] = _provenance_rows(*shown, page["diff"])
        return page

    def run(request):
        return kg.show_run(request.path_params["uid"])

    def experiments(request):
        return {"experiments": kg.experiments()}

    def experiment(request):
        # By uid (as every link names it), its start, or a name only it has.
        info = kg.experiment(request.path_params["key"])
        runs = kg.run_table(experiment=info["uid"])
        page = {"experiment": info, "runs": runs, "columns": _metric_columns(runs), "x": None,
                "y": None, "front": None, "figure": None, "why": ""}
        try:
            x, y = _objectives(request, info["metrics"], ("accuracy", "latency"))
            front = kg.pareto([x, y], experiment=info["uid"], write=False)
        except CkgError as exc:  # fewer than two metrics or points: the runs are listed still
            return {**page, "why": str(exc)}
        figure = None if front.unranked else figures.front_figure(
            front.table, front.objectives, front.units,
            lambda row: "/runs/" + quote(row["uids"][0]))
        return {**page, "x": x, "y": y, "front": _front(front), "figure": figure,
                "why": front.unranked}

    def leaderboards(request):
        boards = kg.leaderboards()
        fronts = {}
        for b in boards:
            fronts.setdefault((b["task"], b["dataset"]), set()).add(b["metric"])
        return {"leaderboards": boards,
                "fronts": [{"task": t, "dataset": d, "metrics": sorted(m)}
                           for (t, d), m in fronts.items() if len(m) >= 2]}  # fmt: skip

    def leaderboard(request):
        q = request.query_params
        task, dataset, metric = q.get("task"), q.get("dataset"), q.get("metric")
        if not (task and dataset and metric):
            raise UsageError("a leaderboard needs task, dataset and metric (see /results)")
        direction = q.get("direction") or None
        page = _count(q.get("page"), 1, MAX_PAGE)
        try:  # the page's rows alone, ranked in the store
            frame = kg.compare(task, dataset, metric, direction,
                               start=(page - 1) * PAGE_ROWS, stop=page * PAGE_ROWS)
        except UsageError as exc:  # a metric of unknown direction: the page asks for one
            if direction:
                raise
            return {"task": task, "dataset": dataset, "metric": metric, "rows": [],
                    "direction": None, "why": str(exc), **_paging(1, 0)}  # fmt: skip
        rows = _plain(frame.to_dict("records"))
        found = kg.reproductions([r["result"] for r in rows])
        for row in rows:
            row["reproduced"] = [{**x, "ratio": _ratio(x["reproduced"], row["value"])}
                                 for x in found.get(row["result"], [])]  # fmt: skip
        return {"task": task, "dataset": dataset, "metric": frame.attrs["metric"],
                "direction": frame.attrs["direction"], "why": frame.attrs["why"],
                "rows": rows, **_paging(page, frame.attrs["total"])}  # fmt: skip

    def results_front(request):
        q = request.query_params
        task, dataset = q.get("task") or None, q.get("dataset") or None
        present = board_metrics(kg.store, task, dataset)
        x, y = _objectives(request, present, ("throughput", "power"))
        front = kg.pareto([x, y], source="papers", task=task, dataset=dataset, write=False)
        return {"task": task, "dataset": dataset, "metrics": present, "x": x, "y": y,
                "front": _front(front),
                "figure": None if front.unranked else figures.front_figure(
                    front.table, front.objectives, front.units)}

    def platforms(request):
        return {"platforms": kg.platforms()}

    def platform(request):
        info = kg.platform(request.path_params["uid"])
        return {**info, "metrics": _metric_columns(info["runs"])}

    return {
        "/": (home, "home.html"),
        "/artifacts": (artifacts, "artifacts.html"),
        "/artifacts/{key:path}": (artifact, "artifact.html"),
        "/runs": (runs, "runs.html"),
        "/runs/compare": (compare_runs, "compare.html"),
        "/runs/{uid}": (run, "run.html"),
        "/experiments": (experiments, "experiments.html"),
        "/experiments/{key:path}": (experiment, "experiment.html"),
        "/results": (leaderboards, "results.html"),
        "/results/leaderboard": (leaderboard, "leaderboard.html"),
        "/results/front": (results_front, "front.html"),
        "/platforms": (platforms, "platforms.html"),
        "/platforms/{uid:path}": (platform, "platform.html"),
    }


# --- helpers of the views -----------------------------------------------------------------


def _plan(kg, uid: str, variations: list[str]) -> dict:
    """The steps that would run the artifact, or why there are none. Planned on the store
    itself, not through the API's remembered plans, so that a page writes nothing. The
    :class:`~ckg.plan.Plan` itself: a template reads its fields, and only JSON needs its
    ``to_dict()``, which copied every step's env and state (two fifths of the page's time)."""
    from ckg.plan import plan

    try:
        return {"plan": plan(kg.store, uid, variations), "plan_error": None}
    except CkgError as exc:
        return {"plan": None, "plan_error": str(exc)}


def _objectives(request: Request, present: list[str], preferred: tuple[str, str]):
    """The two objectives asked for (``x``, ``y``), else the preferred pair where the data
    has it, else the first two metrics present."""
    q = request.query_params
    if q.get("x") and q.get("y"):
        return q["x"], q["y"]
    if set(preferred) <= set(present):
        return preferred
    if len(present) < 2:
        raise UsageError(f"a front needs two metrics; this selection has {present or 'none'}")
    return present[0], present[1]


def _front(front) -> dict:
    return {"objectives": [str(o) for o in front.objectives], "units": front.units,
            "scope": front.scope, "left_out": front.left_out,
            "hypervolume": front.hypervolume, "unranked": front.unranked,
            "rows": front.rows()}  # fmt: skip


def _metric_columns(rows: list[dict]) -> list[dict]:
    """The metrics measured over ``rows`` (each with ``measurements``), one column each, as
    the CLI's tables show them (:func:`ckg.cli.app.print_rows`): ``raw`` the unit recorded,
    ``unit`` the prefixed one its values are shown in (:func:`human_unit`: µs, MB) and
    ``factor`` what they are divided by for it.

    >>> _metric_columns([{"measurements": [{"metric": "latency", "value": 7.4e-05, "unit": "s"},
    ...                                    {"metric": "memory", "value": 168951808, "unit": "B"}]}])
    [{'metric': 'latency', 'raw': 's', 'unit': 'µs', 'factor': 1e-06}, \
{'metric': 'memory', 'raw': 'B', 'unit': 'MB', 'factor': 1000000.0}]
    """
    units: dict[str, str] = {}
    values: dict[str, list] = {}
    for row in rows:
        for m in row["measurements"]:
            units.setdefault(m["metric"], m.get("unit") or "")
            if (m.get("unit") or "") == units[m["metric"]]:
                values.setdefault(m["metric"], []).append(m["value"])
    columns = []
    for metric in sorted(units):
        factor, shown = human_unit(values.get(metric, []), units[metric])
        columns.append({"metric": metric, "raw": units[metric], "unit": shown, "factor": factor})
    return columns


def _provenance_rows(a: dict, b: dict, diff: dict) -> list[dict]:
    """What :meth:`~ckg.api.KnowledgeGraph.diff_runs` found between two shown runs, one row
    per value that differs: ``field`` and ``key`` (a map's entry, else None), the value in
    ``a`` and in ``b`` (None where one lacks it), as a person reads a diff.

    >>> shown = lambda params, env: {"run": {"params": params, "env_full": env},
    ...     "artifact": {"uid": "x"}, "platform": {}, "packages": []}
    >>> a, b = shown({"model": "knn"}, {"PATH": "/bin"}), shown({"model": "svm"}, {})
    >>> _provenance_rows(a, b, {"params": {"changed": ["model"]}, "env": {"only_a": ["PATH"]}})
    [{'field': 'params', 'key': 'model', 'a': 'knn', 'b': 'svm'}, \
{'field': 'env', 'key': 'PATH', 'a': '/bin', 'b': None}]
    """
    from ckg.graph.runs import diff_rows, provenance

    return diff_rows(provenance(a), provenance(b), diff)  # as ckg diff prints them


def _ratio(reproduced, reported):
    if reproduced is None or not reported:
        return None
    return reproduced / reported


def _paging(page: int, total: int) -> dict:
    """What a page of a list of ``total`` rows says of itself (:data:`PAGE_ROWS` a page):
    its number, how many pages there are, its first row's number, the total."""
    return {"page": page, "pages": max(1, math.ceil(total / PAGE_ROWS)),
            "first": (page - 1) * PAGE_ROWS + 1, "total": total}  # fmt: skip


def _count(text, default: int, most: int) -> int:
    """The count ``text`` asks for (``default`` if it is none); UsageError above ``most``."""
    try:
        count = max(1, int(text))
    except (TypeError, ValueError):
        return default
    if count > most:
        raise UsageError(f"limit is at most {most} (asked {count})")
    return count


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


# --- template filters and JSON ------------------------------------------------------------


def _num(value, factor: float = 1.0) -> str:
    """A number as the CLI shows it, divided by ``factor`` first (a column's :func:`human_unit`).

    >>> _num(7.438e-05, 1e-06), _num(168951808, 1e6), _num(None), _num("knn")
    ('74.38', '169.0', '', 'knn')
    """
    if not is_number(value):
        return "" if value is None else str(value)
    return format_number(value / factor if factor != 1 else value)


def _params_text(params) -> str:
    """``model=knn k=1`` from a run's parameters (a dict, or text kept as stored)."""
    if isinstance(params, dict):
        return " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                        for k, v in params.items())  # fmt: skip
    return "" if params is None else str(params)


def _url(path: str, **query) -> str:
    """``path`` with the query parameters that have a value."""
    given = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(given) if given else "")


def _json(data) -> str:
    return json.dumps(_plain(data), ensure_ascii=False, default=str, allow_nan=False)


def _plain(value):
    """``value`` with NaN and infinities as None, numpy scalars as Python numbers and objects
    that have a ``to_dict()`` (a plan) as that."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bytes, int)):
        return value
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return _plain(value.to_dict())
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
