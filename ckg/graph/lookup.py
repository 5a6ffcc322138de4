"""Look-ups over ingested artifacts: find by tags, select the one a target names (as
MLCFlow chooses among several), show one, walk its dependency tree.

These run on every ``ckg find``, so this module imports nothing heavy: the store's rows
come back as dicts and CM's tag rules come from :mod:`ckg.core.resolve`.
"""

import json
import os
from dataclasses import dataclass

from ckg.core.errors import NotFound, UsageError, did_you_mean
from ckg.core.resolve import (
    Choice,
    choose,
    match_tags,
    parse_tags,
    place,
    sort_value,
    source_matches,
)
from ckg.core.schema import check_name

_SUMMARY = (
    "a.uid AS uid, a.alias AS alias, a.kind AS kind, a.format AS format, a.tags AS tags, "
    "a.variations AS variations, a.path AS path, a.source_uid AS source_uid"
)
# A target's candidates: what choosing among them and naming them needs (a variation list can
# be kilobytes: read only where variations filter the candidates).
_CANDIDATE = (
    "a.uid AS uid, a.alias AS alias, a.kind AS kind, a.format AS format, a.path AS path, "
    "a.source_uid AS source_uid"
)
# What choosing among several matches needs besides the candidate: the meta's ``sort`` and
# the source's location and name. Read only when more than one artifact matched.
_CHOICE = (
    "UNWIND $uids AS u MATCH (a:Artifact {uid: u}) "
    "OPTIONAL MATCH (s:Source {uid: a.source_uid}) "
    "RETURN a.uid AS uid, s.location AS source, s.name AS source_name, "
    # A meta without the text "sort" has no sort key: not read, nor parsed (200 candidates'
    # metas took 0.1-0.4 s of an artifact's page at 100x the corpora).
    """CASE WHEN a.meta CONTAINS '"sort"' THEN a.meta END AS meta"""
)
#: The environment variable that holds the user's source order (:func:`source_order`).
SOURCE_ORDER = "CKG_SOURCE_ORDER"
_EDGE = (
    "r.entry AS entry, r.kind AS kind, r.tags AS tags, r.names AS names, r.guard AS guard, "
    "r.via_variation AS via_variation, r.position AS position, r.matches AS matches, "
    "r.version AS version, r.version_min AS version_min, r.version_max AS version_max"
)


def _tagged(plain) -> tuple[str, dict]:
    """The condition that artifact ``a`` carries every tag of ``plain``, one ``$tagN IN
    a.tags`` test each (``true`` for none), and its parameters.

    A test per tag is what the store's index on the tags (``NODE_INDEXES``) answers; one
    ``all(t IN $plain WHERE t IN a.tags)`` reads every artifact instead (0.26 s of a cached
    ``ckg run get,python3`` at 100x the corpora, 2 ms so).

    >>> _tagged(["get", "python3"])
    ('$tag0 IN a.tags AND $tag1 IN a.tags', {'tag0': 'get', 'tag1': 'python3'})
    """
    params = {f"tag{i}": tag for i, tag in enumerate(plain)}
    return " AND ".join(f"${name} IN a.tags" for name in params) or "true", params


def find(store, tags: str | list[str] = "", kind: str | None = None, *,
         source: str | None = None) -> list[dict]:
    """Artifacts matching ``tags`` with CM's rules, sorted by alias, each with its source
    (``source``: the location it was ingested from, ``source_name``: its ``--name``).

    Plain tags must all be present and ``-tag`` excludes (both filtered in Cypher);
    ``_x`` keeps artifacts declaring variation ``x`` (filtered here, as ``name.#`` needs it).
    ``source`` keeps those of the sources it names (:func:`source_uids`).

    Raises
    ------
    NotFound
        ``source`` names no ingested source.

    Examples
    --------
    >>> find(kg.store, "get,python3,-src", kind="script")       # doctest: +SKIP
    [{'uid': 'd0b5dd74373f4a62', 'alias': 'get-python3', 'kind': 'script', ...}]
    >>> find(kg.store, "get,python3", source="mlperf-automations")  # doctest: +SKIP
    [{'uid': '...', 'alias': 'get-python3', ..., 'source_name': 'mlperf-automations'}]
    """
    query = parse_tags(tags)
    tagged, tag_params = _tagged(query.plain)
    rows = store.run(
        f"MATCH (a:Artifact) WHERE {tagged} "
        "AND none(t IN $excluded WHERE t IN a.tags) "
        "AND ($kind IS NULL OR a.kind = $kind) "
        "AND ($sources IS NULL OR a.source_uid IN $sources) "
        "OPTIONAL MATCH (s:Source {uid: a.source_uid}) "
        f"RETURN {_SUMMARY}, s.location AS source, s.name AS source_name "
        "ORDER BY alias, source, uid",
        {**tag_params, "excluded": list(query.excluded), "kind": kind,
         "sources": None if source is None else source_uids(store, source)},
    )
    return match_tags(tags, rows) if query.variations else rows


def source_uids(store, name: str) -> list[str]:
    """The uids of the ingested sources ``name`` names as ``--source`` takes it everywhere
    (:func:`ckg.core.resolve.source_matches`): a source's ``--name``, its location (a Git
    URL, a path), the last part(s) of it (``mlperf-automations``), or the start of its uid.

    Raises
    ------
    NotFound
        No ingested source is named so; the closest and some of those there are are named.
    """
    rows = store.run("MATCH (s:Source) RETURN s.uid AS source_uid, s.location AS source, "
                     "s.name AS source_name ORDER BY source, source_uid")  # fmt: skip
    found = [row["source_uid"] for row in rows if source_matches(row, name)]
    if not found:
        names = [source_label(row) or row["source_uid"] for row in rows]
        listed = ", ".join(names[:8]) or "none yet: ckg ingest one"
        raise NotFound(f"no ingested source {name!r}{did_you_mean(name, names)}; "
                       f"sources: {listed}")  # fmt: skip
    return found


def source_label(row: dict) -> str:
    """Where an artifact came from, in a word, as ``ckg find`` shows it (and ``--source``
    takes it): its source's ``source_name``, else the last part of its location ``source``.

    >>> source_label({"source": "https://github.com/mlcommons/mlperf-automations/"})
    'mlperf-automations'
    >>> source_label({"source": "/r/cm4mlops", "source_name": "cm"}), source_label({})
    ('cm', '')
    """
    location = (row.get("source") or "").rstrip("/")
    return row.get("source_name") or location.rpartition("/")[2] or location


def find_page(store, tags: str | list[str] = "", kind: str | None = None, *,
              source: str | None = None, offset: int = 0,
              limit: int = 100) -> tuple[list[dict], int]:
    """One page of :func:`find`'s artifacts (those of ``source``, a source uid, only when
    given): ``limit`` rows from ``offset`` on, and how many match in all.

    A graph of a hundred repositories holds tens of thousands of artifacts, more than a page
    can show or a reader read; only the page's rows are read and joined to their source.
    Without ``_variation`` tags the page is ordered by alias and uid (the uid keeps the order
    total, so pages neither repeat nor skip a row); with them, :func:`find`'s rows, whose
    variations filter here, are sliced.

    Examples
    --------
    >>> rows, total = find_page(kg.store, "get", offset=100, limit=100)  # doctest: +SKIP
    >>> len(rows), total  # doctest: +SKIP
    (100, 412)
    """
    query = parse_tags(tags)
    if query.variations:
        rows = [r for r in find(store, tags, kind) if source is None or r["source_uid"] == source]
        return rows[offset:offset + limit], len(rows)
    tagged, tag_params = _tagged(query.plain)
    where = (f"WHERE {tagged} "
             "AND none(t IN $excluded WHERE t IN a.tags) AND ($kind IS NULL OR a.kind = $kind) "
             "AND ($source IS NULL OR a.source_uid = $source) ")
    params = {**tag_params, "excluded": list(query.excluded), "kind": kind,
              "source": source, "offset": offset, "limit": limit}  # fmt: skip
    total = store.run(f"MATCH (a:Artifact) {where}RETURN count(a) AS n", params)[0]["n"]
    rows = store.run(
        f"MATCH (a:Artifact) {where}WITH a ORDER BY a.alias, a.uid SKIP $offset LIMIT $limit "
        "OPTIONAL MATCH (s:Source {uid: a.source_uid}) "
        f"RETURN {_SUMMARY}, s.location AS source, s.name AS source_name ORDER BY alias, uid",
        params,
    )
    return rows, total


def holds_artifacts(store) -> bool:
    """Whether the graph holds any artifact at all: what an empty :func:`find` tells apart
    (nothing ingested yet, or nothing matching). One row at most is read."""
    return bool(store.run("MATCH (a:Artifact) RETURN a.uid AS uid LIMIT 1"))


def implements(store, artifact_uid: str, paper_uid: str) -> bool:
    """Whether the graph records that the artifact implements the paper (``IMPLEMENTS``)."""
    return bool(store.run(
        "MATCH (:Artifact {uid: $a})-[e:IMPLEMENTS]->(:Paper {uid: $p}) RETURN count(e) AS n",
        {"a": artifact_uid, "p": paper_uid},
    )[0]["n"])


def project_artifacts(store, source: str | None = None) -> list[dict]:
    """The ``generic`` artifacts (a project itself, not the scripts inside a CM repository)
    of one source (its uid) or of every source when None: ``artifact`` (uid), the source's
    ``location`` and Git ``origin``, and ``papers``, the uids of those it implements."""
    return store.run(
        "MATCH (s:Source)-[:CONTAINS]->(a:Artifact) "
        "WHERE a.format = 'generic' AND ($source IS NULL OR s.uid = $source) "
        "OPTIONAL MATCH (a)-[:IMPLEMENTS]->(p:Paper) "
        "RETURN s.location AS location, s.origin AS origin, a.uid AS artifact, "
        "collect(p.uid) AS papers",
        {"source": source},
    )


def papers_with_code_at(store, urls: list[str]) -> list[dict]:
    """The papers one of whose ``code_urls`` is among ``urls`` (normalised repository URLs,
    :func:`ckg.formats.papers.repo_url`): ``uid`` and every one of their ``urls``."""
    return store.run(
        "MATCH (p:Paper) WHERE any(u IN p.code_urls WHERE u IN $urls) "
        "RETURN p.uid AS uid, p.code_urls AS urls",
        {"urls": urls},
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """The artifact a target names: its uid, the variations written in the target, and the
    choice made when several artifacts matched (None when one did and no source was named).
    """

    uid: str
    variations: tuple[str, ...]
    choice: Choice | None = None


def source_order(environ=None) -> tuple[str, ...]:
    """The user's source order: ``CKG_SOURCE_ORDER``, source names, locations or uid starts
    separated by commas, first preferred (:func:`ckg.core.resolve.order_key`).

    >>> source_order({"CKG_SOURCE_ORDER": "mlperf-automations, cm4mlops"})
    ('mlperf-automations', 'cm4mlops')
    """
    text = (os.environ if environ is None else environ).get(SOURCE_ORDER, "")
    return tuple(n.strip() for n in text.split(",") if n.strip())


def select(store, target: str, *, source: str = "", quiet: bool = True,
           order: tuple[str, ...] | None = None, cached=None) -> Selection:
    """The artifact ``target`` names, chosen as MLCFlow chooses when several match.

    Parameters
    ----------
    target : str
        An artifact uid or alias, or tags separated by commas or spaces (``get,python3``,
        ``-tag`` excludes); ``_name`` words are variations: with tags, only artifacts that
        declare them match, as in MLCFlow's search.
    source : str
        Keep the matches of this source only (:func:`ckg.core.resolve.source_matches`).
    quiet : bool
        False where MLCFlow would ask the user to choose (not ``--quiet``, a terminal).
    order : tuple of str
        The user's source order; :func:`source_order` when None.
    cached : callable, optional
        Called with the matching uids when several match, returns those with cache
        entries (MLCFlow prefers them); None when the cache is not used.

    Raises
    ------
    UsageError
        Nothing matches; nothing of ``source`` matches; or several do where MLCFlow would
        ask (not ``quiet``): the message lists them with their sources.
    """
    rows, variations = _candidates(store, target)
    if not rows:
        raise UsageError(f"unknown target {target!r}: no artifact has that uid, alias or tags")
    return _select_among(store, target, rows, variations, source=source, quiet=quiet,
                         order=order, cached=cached)  # fmt: skip


def _select_among(
    store,
    target: str,
    rows: list[dict],
    variations: tuple[str, ...],
    *,
    source: str,
    quiet: bool = True,
    order=None,
    cached=None,
) -> Selection:
    """:func:`select` among the candidates ``rows`` of ``target`` (:func:`_candidates`)."""
    if len(rows) == 1 and not source:
        return Selection(rows[0]["uid"], variations)
    _add_choice_fields(store, rows)
    choice = choose(rows, source=source, order=source_order() if order is None else order,
                    cached=cached([r["uid"] for r in rows]) if cached and len(rows) > 1 else ())
    if choice is None:
        raise UsageError(
            f"--source {source!r}: none of the {len(rows)} artifacts that match {target!r} "
            f"comes from it; they are {listing(rows)}"
        )
    if len(choice.ask) > 1 and not quiet:
        raise UsageError(
            f"{target!r} matches {len(choice.ask)} scripts MLCFlow would ask to choose among: "
            f"{listing(choice.ask)}; add --quiet to take the first ({choice.chosen['alias']}), "
            "or choose with --source NAME or more tags"
        )
    return Selection(choice.chosen["uid"], variations, choice)


def listing(candidates, limit: int = 12) -> str:
    """Candidates as one line: aliases grouped by source, in the given order.

    >>> listing([{"alias": "get-llvm", "source": "/r/a"}, {"alias": "get-gcc", "source": "/r/a"},
    ...          {"alias": "get-gcc", "source": "/r/b", "source_name": "cm"}])
    'get-llvm, get-gcc (/r/a); get-gcc (cm)'
    """
    groups: dict[str, list[str]] = {}
    shown = list(candidates)[:limit]
    for c in shown:
        where = c.get("source_name") or c.get("source") or c.get("source_uid") or "?"
        groups.setdefault(where, []).append(c.get("alias") or c["uid"])
    text = "; ".join(f"{', '.join(names)} ({where})" for where, names in groups.items())
    more = len(list(candidates)) - len(shown)
    return text + (f"; and {more} more" if more > 0 else "")


def _candidates(store, target: str) -> tuple[list[dict], tuple[str, ...]]:
    """The artifacts ``target`` names (by uid, else alias, else tags) and its variations."""
    words = [w for w in target.replace(",", " ").split() if w]
    variations = tuple(w[1:] for w in words if w.startswith("_"))
    plain = [w for w in words if not w.startswith(("_", "-"))]
    excluded = [w[1:] for w in words if w.startswith("-") and not w.startswith("-_")]
    if not plain:
        raise UsageError(f"target {target!r} names no artifact, only variations")
    rows = []
    if len(plain) == 1 and not excluded:
        # A uid wins over an alias. Asked apart: the uid's index answers the first, where
        # ``a.uid = $k OR a.alias = $k`` tested every artifact (0.2 s at 100x the corpora,
        # for the uid that ckg run hands its planner).
        rows = store.run(f"MATCH (a:Artifact {{uid: $k}}) RETURN {_CANDIDATE}", {"k": plain[0]})
        rows = rows or store.run(
            f"MATCH (a:Artifact {{alias: $k}}) RETURN {_CANDIDATE}", {"k": plain[0]}
        )
    if not rows:
        tagged, tag_params = _tagged(plain)
        rows = store.run(
            f"MATCH (a:Artifact) WHERE {tagged} "
            f"AND none(t IN $excluded WHERE t IN a.tags) RETURN {_CANDIDATE}"
            + (", a.variations AS variations" if variations else ""),
            {**tag_params, "excluded": excluded},
        )
        # as MLCFlow's search: only artifacts declaring the variations (if none does, all
        # stay, and the planner says which variation is not declared)
        if variations and len(rows) > 1:
            rows = match_tags(["_" + v for v in variations], rows) or rows
    return sorted(rows, key=lambda r: r["uid"]), variations


def _add_choice_fields(store, rows: list[dict]) -> None:
    """Add what :func:`ckg.core.resolve.choose` reads: ``sort``, ``place``, ``source``."""
    extra = {r["uid"]: r for r in store.run(_CHOICE, {"uids": [r["uid"] for r in rows]})}
    for row in rows:
        more = extra.get(row["uid"], {})
        try:
            meta = json.loads(more.get("meta") or "{}")
        except ValueError:
            meta = {}
        row["sort"] = sort_value(meta if isinstance(meta, dict) else {})
        row["source"] = more.get("source") or ""
        row["source_name"] = more.get("source_name") or ""
        row["place"] = place(row["source"], row.get("path") or "")


def artifact(store, alias_or_uid: str, *, source: str = "") -> dict:
    """The artifact whose uid, else alias, else tags, is ``alias_or_uid``; where several
    match, the one MLCFlow would choose (:func:`select`, quiet).

    Raises
    ------
    NotFound
        No artifact has that uid, alias or tags.
    UsageError
        None of them comes from ``source``.
    """
    return _artifact(store, alias_or_uid, source)[0]


def chosen(choice: Choice | None) -> dict | None:
    """A choice among several artifacts as plain data: the one taken and the others, each
    with its uid, alias and source (what ``show`` and ``deps`` report); None for no choice.
    """
    if choice is None:
        return None

    def brief(c):
        return {k: c.get(k) for k in ("uid", "alias", "source", "source_name")}

    return {"chosen": brief(choice.chosen), "also_matched": [brief(c) for c in choice.others]}


def _artifact(store, alias_or_uid: str, source: str) -> tuple[dict, Choice | None]:
    rows, _ = _candidates(store, alias_or_uid)
    if not rows:
        aliases = [r["alias"] for r in store.run("MATCH (a:Artifact) RETURN a.alias AS alias")]
        hint = did_you_mean(alias_or_uid, filter(None, aliases))
        raise NotFound(f"no artifact with alias or uid {alias_or_uid!r}{hint}")
    if len(rows) == 1 and not source:
        return store.get_node("Artifact", rows[0]["uid"]), None
    picked = _select_among(store, alias_or_uid, rows, (), source=source)
    return store.get_node("Artifact", picked.uid), picked.choice


def show(store, alias_or_uid: str, *, source: str = "") -> dict:
    """One artifact with its meta, dependencies (resolved and not), variations and source.

    Examples
    --------
    >>> show(kg.store, "get-python3")["source"]["commit"]       # doctest: +SKIP
    'e1d5c7cf...'
    """
    node, choice = _artifact(store, alias_or_uid, source)
    uid = node["uid"]
    deps = store.run(
        f"MATCH (a:Artifact {{uid: $u}})-[r:DEPENDS_ON]->(b:Artifact) RETURN {_EDGE}, "
        "b.uid AS target_uid, b.alias AS target_alias ORDER BY kind, via_variation, position",
        {"u": uid},
    )
    unresolved = store.run(
        "MATCH (a:Artifact {uid: $u})-[:NEEDS]->(x:UnresolvedDependency) RETURN x "
        "ORDER BY x.kind, x.via_variation, x.position",
        {"u": uid},
    )
    variations = store.run(
        "MATCH (a:Artifact {uid: $u})-[:HAS_VARIATION]->(v:Variation) RETURN v ORDER BY v.name",
        {"u": uid},
    )
    used_by = store.run(
        "MATCH (b:Artifact)-[:DEPENDS_ON]->(a:Artifact {uid: $u}) "
        "RETURN DISTINCT b.uid AS uid, b.alias AS alias ORDER BY alias",
        {"u": uid},
    )
    held_by = store.get_node("Source", node.get("source_uid") or "")
    info = dict(node)
    try:
        info["meta"] = json.loads(node.get("meta") or "{}")
    except ValueError:
        pass  # keep the text as stored
    return {
        "artifact": info,
        "dependencies": deps,
        "unresolved": [row["x"] for row in unresolved],
        "variations": [row["v"] for row in variations],
        "used_by": used_by,
        "source": held_by,
        "choice": chosen(choice),
    }


def deps(store, alias_or_uid: str, depth: int | None = None, reverse: bool = False, *,
         source: str = "", via: bool = True) -> dict:
    """The dependency tree of an artifact (or of its dependents when ``reverse``).

    One query per level. A node is expanded where it first appears (breadth first); later
    appearances carry ``repeat: True`` and no children, which also cuts cycles. Unresolved
    entries appear as children with ``status: "missing"``. With ``via`` False a resolved
    child's ``via`` stays empty: one row per target is read instead of one per edge with
    its fields (what a drawing of the tree needs: app-mlperf-inference's second level is
    286 targets against 818 edges of 15 fields, 23 ms against 265 ms at load 6).

    Returns
    -------
    dict
        ``{uid, alias, kind, children: [{uid, alias, kind, via: [edge...], children...}]}``
    """
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    node, choice = _artifact(store, alias_or_uid, source)
    root = {
        "uid": node["uid"],
        "alias": node.get("alias"),
        "kind": node.get("kind"),
        "children": [],
        "choice": chosen(choice),
    }
    seen = {node["uid"]: root}
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        by_uid = {n["uid"]: n for n in frontier}
        frontier = []
        for row in _edges(store, list(by_uid), reverse, via):
            parent = by_uid[row["parent"]]
            child = next((c for c in parent["children"] if c.get("uid") == row["uid"]), None)
            if child is None or row["uid"] is None:
                child = {
                    "uid": row["uid"],
                    "alias": row["alias"],
                    "kind": row["kind"],
                    "status": row["status"],
                    "via": [],
                    "children": [],
                }
                if row["uid"] is not None and row["uid"] in seen:
                    child["repeat"] = True
                elif row["uid"] is not None:
                    seen[row["uid"]] = child
                    frontier.append(child)
                parent["children"].append(child)
            if via or row["status"] == "missing":
                child["via"].append(row["via"])
            if row["status"] == "ambiguous":  # from every edge, whatever order they came in
                child["status"] = "ambiguous"
    return root


def _edges(store, uids: list[str], reverse: bool, via: bool = True) -> list[dict]:
    pattern = (
        "(b:Artifact)-[r:DEPENDS_ON]->(a:Artifact)"
        if reverse
        else "(a:Artifact)-[r:DEPENDS_ON]->(b:Artifact)"
    )
    target = "a.uid AS parent, b.uid AS uid, b.alias AS alias, b.kind AS target_kind"
    rows = store.run(
        f"MATCH {pattern} WHERE a.uid IN $uids RETURN {target}, {_EDGE} "
        "ORDER BY parent, alias, uid, position, entry"
        if via
        else f"MATCH {pattern} WHERE a.uid IN $uids RETURN {target}, "
        "max(r.matches) AS matches ORDER BY parent, alias, uid",
        {"uids": uids},
    )
    out = [_row(r, "ambiguous" if (r["matches"] or 1) > 1 else "ok") for r in rows]
    if not reverse:
        missing = store.run(
            "MATCH (a:Artifact)-[:NEEDS]->(x:UnresolvedDependency) WHERE a.uid IN $uids "
            "RETURN a.uid AS parent, x.kind AS kind, x.tags AS tags, x.names AS names, "
            "x.guard AS guard, x.via_variation AS via_variation, x.position AS position, "
            "x.uid AS entry ORDER BY parent, kind, position, entry",
            {"uids": uids},
        )
        out.extend(_row(r, "missing") for r in missing)
    return out


def _row(r: dict, status: str) -> dict:
    """One child of the tree: the target (None when missing) and the edge that leads to it."""
    via = {k: r.get(k) for k in ("kind", "tags", "names", "guard", "via_variation", "entry")}
    if status == "missing":
        return {
            "parent": r["parent"],
            "uid": None,
            "alias": ",".join(r["tags"] or []),
            "kind": None,
            "status": status,
            "via": via,
        }
    return {
        "parent": r["parent"],
        "uid": r["uid"],
        "alias": r["alias"],
        "kind": r["target_kind"],
        "status": status,
        "via": via,
    }


# --- what dependency resolution reads (ckg.ingest.write) ---------------------------------

#: What resolving an entry against an artifact reads of it (CM's tag rules).
_RESOLVED_BY = (
    "a.uid AS uid, a.alias AS alias, a.kind AS kind, a.tags AS tags, "
    "a.variations AS variations, a.source_uid AS source_uid"
)


def _fields(var: str, fields) -> str:
    return ", ".join(f"{var}.{check_name(f)} AS {check_name(f)}" for f in fields)


def resolution_candidates(store, plains: list[list[str]] | None = None) -> list[dict]:
    """Every artifact as dependency resolution reads it (``uid``, ``alias``, ``kind``,
    ``tags``, ``variations``, ``source_uid``); with ``plains``, only those carrying every
    tag of one of these lists (one scan: an UNWIND of the lists would scan once each)."""
    if plains is None:
        return store.run(f"MATCH (a:Artifact) RETURN {_RESOLVED_BY}")
    return store.run(
        "MATCH (a:Artifact) WHERE any(p IN $plains WHERE all(t IN p WHERE t IN a.tags)) "
        f"RETURN {_RESOLVED_BY}",
        {"plains": plains},
    )


def source_marks(store) -> list[dict]:
    """Every source's ``uid``, ``at`` (when last ingested) and ``done`` (complete)."""
    return store.run(
        "MATCH (s:Source) RETURN s.uid AS uid, s.ingested_at AS at, s.complete AS done")


def entries_into(store, targets: list[str], skip: list[str], fields) -> list[dict]:
    """The ``DEPENDS_ON`` edges into the artifacts ``targets`` from artifacts not in
    ``skip``: ``src``, ``entry`` and the edge's ``fields``."""
    return store.run(
        "MATCH (a:Artifact)-[r:DEPENDS_ON]->(b:Artifact) WHERE b.uid IN $targets "
        f"AND NOT a.uid IN $skip RETURN a.uid AS src, r.entry AS entry, {_fields('r', fields)}",
        {"targets": targets, "skip": skip},
    )


def unresolved_entries(store, fields, source: str | None = None) -> list[dict]:
    """The entries that matched no artifact (``UnresolvedDependency``), of every artifact
    or of one source's: ``src`` (the artifact), ``alias``, ``entry`` and ``fields``."""
    where = "{source_uid: $s}" if source is not None else ""
    return store.run(
        f"MATCH (a:Artifact {where})-[:NEEDS]->(u:UnresolvedDependency) "
        f"RETURN a.uid AS src, a.alias AS alias, u.uid AS entry, {_fields('u', fields)}",
        {"s": source} if source is not None else None,
    )


def dependency_count(store, source: str) -> int:
    """How many ``DEPENDS_ON`` edges leave the artifacts of ``source`` (counted in the
    engine: returning them costs more than the rest of an unchanged re-ingest)."""
    return store.run(
        "MATCH (a:Artifact {source_uid: $s})-[r:DEPENDS_ON]->(:Artifact) RETURN count(r) AS n",
        {"s": source},
    )[0]["n"]


def ambiguous_entries(store, source: str) -> list[dict]:
    """The edges of the entries of ``source``'s artifacts that matched several artifacts:
    ``alias`` (of the artifact), ``entry``, ``tags`` and ``target`` (a match's alias)."""
    return store.run(
        "MATCH (a:Artifact {source_uid: $s})-[r:DEPENDS_ON]->(b:Artifact) WHERE r.matches > 1 "
        "RETURN a.alias AS alias, r.entry AS entry, r.tags AS tags, b.alias AS target",
        {"s": source},
    )
