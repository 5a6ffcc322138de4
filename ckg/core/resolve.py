"""Resolve dependency entries to artifacts with Collective Mind's tag rules (pure, no I/O).

A dependency's tags, as written in the meta, are read the way CM's script search reads them:

- a plain tag (``python3``) must be among the artifact's tags;
- ``-tag`` excludes artifacts that have ``tag``;
- ``_x`` keeps only artifacts that declare variation ``x``; a declared wildcard variation
  ``name.#`` accepts any ``_name.<anything>`` (``_name.#`` itself included);
- ``-_x`` (leave variation ``x`` out when running) does not filter the search.

Tags are compared case-sensitively, as CM does. Candidates are dicts with ``uid``, ``alias``,
``tags``, ``variations``, ``source_uid`` and optionally ``kind``: when present, an entry of a
CM/MLC dependency list only matches artifacts of kind ``script``, a ``repo_deps`` entry only
``repo`` artifacts, and so on (:data:`TARGET_KINDS`, :data:`PREFERRED_KIND`). The
artifact's own source is searched first: when it has matches, those win; otherwise matches
anywhere count.

Candidates are indexed by tag (tag -> set of uids); a query intersects the sets of its plain
tags smallest first, so thousands of entries resolve against hundreds of candidates in
milliseconds.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from ckg.core.errors import UsageError
from ckg.core.records import Dependency

_SCRIPT = frozenset({"script"})
# Which artifact kinds a dependency kind can point at; kinds not listed match any artifact.
TARGET_KINDS: dict[str, frozenset[str]] = {
    "deps": _SCRIPT,
    "prehook_deps": _SCRIPT,
    "posthook_deps": _SCRIPT,
    "post_deps": _SCRIPT,
    "repo_deps": frozenset({"repo"}),
    "ck": frozenset({"soft", "package"}),
    "pip": frozenset({"package"}),
    "conda": frozenset({"package"}),
}

# Among the matches of such an entry, those of this kind win when there are any: CK v1 looks
# for software it can detect (soft) before packages it would install.
PREFERRED_KIND: dict[str, str] = {"ck": "soft"}


@dataclass(frozen=True, slots=True)
class TagQuery:
    """Tags split by role: required plain tags, excluded tags, required variations."""

    plain: tuple[str, ...]
    excluded: tuple[str, ...]
    variations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome for one dependency entry: the artifacts it matched and a status.

    ``status`` is ``ok`` (exactly one match), ``ambiguous`` (several) or ``missing`` (none);
    ``matches`` are uids, sorted.
    """

    entry: str
    dependency: Dependency
    matches: tuple[str, ...]
    status: str


def entry_id(dep: Dependency) -> str:
    """The stable id of a dependency entry: ``artifact_uid#kind#via_variation#position``.

    >>> entry_id(Dependency("d0b5dd74373f4a62", "deps", 2, via_variation="cuda"))
    'd0b5dd74373f4a62#deps#cuda#2'
    """
    return f"{dep.artifact_uid}#{dep.kind}#{dep.via_variation}#{dep.position}"


def parse_tags(tags: str | Iterable[str]) -> TagQuery:
    """Split tags (a comma string or a list) into plain, excluded and variation tags.

    >>> parse_tags("get,python,-cuda,_conda.#,-_shared")
    TagQuery(plain=('get', 'python'), excluded=('cuda',), variations=('conda.#',))
    """
    if isinstance(tags, str):
        tags = tags.split(",")
    plain: list[str] = []
    excluded: list[str] = []
    variations: list[str] = []
    for raw in tags:
        tag = raw.strip()
        if not tag:
            continue
        if tag.startswith("-"):
            if not tag.startswith("-_"):  # "-_x" only changes what runs, not what is found
                excluded.append(tag[1:])
        elif tag.startswith("_"):
            variations.append(tag[1:])
        else:
            plain.append(tag)
    return TagQuery(tuple(plain), tuple(excluded), tuple(variations))


def check_tags(tags: str | Iterable[str]) -> None:
    """Refuse ``tags`` given to find artifacts when one of them is empty: nothing between
    two commas or after the last (``get,python3,``), or a ``-`` or ``_`` with no name.

    :func:`parse_tags` drops such a tag, where CM's and MLCFlow's search keep it as the
    tag ``''``, which no artifact carries, and find nothing: the user is told instead of
    getting either answer. No tags at all (``''``) means every artifact.

    Raises
    ------
    UsageError
        One line naming ``tags`` and how tags are written.

    Examples
    --------
    >>> check_tags("get,python3,-cuda,_conda"), check_tags("")
    (None, None)
    >>> check_tags("get,python3,")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ckg.core.errors.UsageError: tags 'get,python3,' hold an empty tag: write names ...
    """
    if isinstance(tags, str) and not tags.strip():
        return
    words = tags.split(",") if isinstance(tags, str) else list(tags)
    if any(not word.strip().removeprefix("-").removeprefix("_") for word in words):
        text = tags if isinstance(tags, str) else ",".join(tags)
        raise UsageError(
            f"tags {text!r} hold an empty tag: write names separated by single commas "
            "(a,b,-c,_variation: -c excludes c, _variation asks for a variation)"
        )


class TagIndex:
    """Candidates indexed by tag and kind, answering :class:`TagQuery` look-ups.

    Examples
    --------
    >>> idx = TagIndex([{"uid": "a", "tags": ["get", "python"], "variations": ["conda.#"]},
    ...                 {"uid": "b", "tags": ["get", "python", "src"], "variations": []}])
    >>> sorted(idx.match(parse_tags("get,python")))
    ['a', 'b']
    >>> sorted(idx.match(parse_tags("get,python,-src,_conda.python")))
    ['a']
    """

    def __init__(self, candidates: Iterable[dict]):
        self.by_uid: dict[str, dict] = {}
        self.by_tag: dict[str, set[str]] = {}
        self.source_of: dict[str, str] = {}
        self._variations: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for c in candidates:
            uid = c["uid"]
            self.by_uid[uid] = c
            self.source_of[uid] = c.get("source_uid", "")
            for tag in c.get("tags") or ():
                self.by_tag.setdefault(tag, set()).add(uid)
            declared = c.get("variations") or ()
            # "name.#" accepts "name.<anything>": keep the "name." prefixes apart
            wild = tuple(v[:-1] for v in declared if v.endswith(".#"))
            self._variations[uid] = (frozenset(declared), wild)

    def declares(self, uid: str, variation: str) -> bool:
        """Whether candidate ``uid`` declares ``variation`` (directly or by a ``name.#``)."""
        exact, wild = self._variations[uid]
        return variation in exact or any(variation.startswith(p) for p in wild)

    def match(self, query: TagQuery, kinds: frozenset[str] | None = None) -> set[str]:
        """Uids of candidates satisfying ``query`` (and of a kind in ``kinds`` if given)."""
        if query.plain:
            sets = sorted((self.by_tag.get(t, set()) for t in query.plain), key=len)
            found = set(sets[0])
            for s in sets[1:]:
                if not found:
                    break
                found &= s
        else:
            found = set(self.by_uid)
        for tag in query.excluded:
            found -= self.by_tag.get(tag, set())
        if kinds is not None:
            # a candidate that does not say its kind is not filtered out
            found = {
                u
                for u in found
                if self.by_uid[u].get("kind", "") in kinds or "kind" not in self.by_uid[u]
            }
        for v in query.variations:
            found = {u for u in found if self.declares(u, v)}
        return found


def resolve(deps: list[Dependency], candidates: list[dict]) -> list[Resolution]:
    """Resolve each dependency entry against the candidate artifacts, CM's way.

    Parameters
    ----------
    deps : list[Dependency]
        Entries as the importers give them.
    candidates : list[dict]
        Artifacts that can be depended on: ``uid``, ``tags``, ``variations``,
        ``source_uid`` and optionally ``kind`` and ``alias``.

    Returns
    -------
    list[Resolution]
        One per entry, in the order of ``deps``. An entry without any plain or variation
        tag matches nothing (CM skips such entries).

    Examples
    --------
    >>> cands = [{"uid": "p", "tags": ["get", "python3"], "variations": [], "source_uid": "s",
    ...           "kind": "script"},
    ...          {"uid": "q", "tags": ["get", "python3"], "variations": [], "source_uid": "t",
    ...           "kind": "script"},
    ...          {"uid": "app", "tags": ["app"], "variations": [], "source_uid": "s"}]
    >>> [(r.matches, r.status) for r in resolve([Dependency("app", "deps", 0, ["get", "python3"]),
    ...                                           Dependency("app", "deps", 1, ["get", "perl"])],
    ...                                          cands)]
    [(('p',), 'ok'), ((), 'missing')]
    """
    index = TagIndex(candidates)
    cache: dict[tuple, set[str]] = {}
    out: list[Resolution] = []
    for dep in deps:
        kinds = TARGET_KINDS.get(dep.kind)
        key = (tuple(dep.tags), dep.kind)
        found = cache.get(key)
        if found is None:
            query = parse_tags(dep.tags)
            found = index.match(query, kinds) if query.plain or query.variations else set()
            preferred = PREFERRED_KIND.get(dep.kind)
            if preferred and len(found) > 1:
                found = {u for u in found if index.by_uid[u].get("kind") == preferred} or found
            cache[key] = found
        own = index.source_of.get(dep.artifact_uid)
        if own is not None and len(found) > 1:
            same = {u for u in found if index.source_of[u] == own}
            if same:
                found = same
        matches = tuple(sorted(found))
        status = "ok" if len(matches) == 1 else "ambiguous" if matches else "missing"
        out.append(Resolution(entry_id(dep), dep, matches, status))
    return out


def match_tags(
    query_tags: str | Iterable[str], candidates: list[dict], kinds: Iterable[str] | None = None
) -> list[dict]:
    """Candidates matching ``query_tags`` with the same rules, in their given order.

    This is ``ckg find --tags a,b,-c``: no tag at all matches every candidate.

    >>> cands = [{"uid": "a", "tags": ["get", "python"]}, {"uid": "b", "tags": ["get", "cuda"]}]
    >>> [c["uid"] for c in match_tags("get,-cuda", cands)]
    ['a']
    """
    index = TagIndex(candidates)
    found = index.match(parse_tags(query_tags), frozenset(kinds) if kinds is not None else None)
    return [c for c in candidates if c["uid"] in found]


# --- choosing one of several matches, as MLCFlow does --------------------------------------

#: Formats whose scripts MLCFlow never sees: CM's (``_cm.yaml``) are found by CM alone, so
#: where an MLCFlow script matches too they come after it.
LATER_FORMATS = {"cm": 1}


@dataclass(frozen=True, slots=True)
class Choice:
    """Which of several matching artifacts runs, and the rest in MLCFlow's order.

    ``ask`` holds the candidates MLCFlow would ask the user to choose among when not in
    quiet mode (the chosen one first): more than one means it would ask.
    """

    chosen: dict
    candidates: tuple[dict, ...]
    ask: tuple[dict, ...]

    @property
    def others(self) -> tuple[dict, ...]:
        return tuple(c for c in self.candidates if c is not self.chosen)


def sort_value(meta) -> float:
    """A meta's ``sort`` as a number (0 when absent or not a number), as MLCFlow reads it.

    >>> sort_value({"sort": 100}), sort_value({}), sort_value({"sort": "x"})
    (100.0, 0.0, 0.0)
    """
    try:
        return float((meta or {}).get("sort", 0) or 0)
    except (TypeError, ValueError, AttributeError):
        return 0.0


def place(location: str, path: str) -> str:
    """The folder MLCFlow would sort an artifact by: its source's location joined to its
    path (for a folder source, the artifact's own folder on this host).

    >>> place("/repos/mlperf-automations/", "script/detect-os")
    '/repos/mlperf-automations/script/detect-os'
    """
    location = (location or "").rstrip("/")
    return f"{location}/{path}" if location and path else location or path or ""


def source_matches(candidate: dict, name: str) -> bool:
    """Whether ``name`` names the candidate's source: its name, its location, the last part(s)
    of its location (``mlperf-automations``, ``mlcommons/mlperf-automations``) or the start
    of its uid.

    >>> c = {"source_uid": "0a25a51d9c1226d9", "source": "/corpora/mlperf-automations",
    ...      "source_name": ""}
    >>> [source_matches(c, n) for n in ("mlperf-automations", "0a25", "automations", "")]
    [True, True, False, False]
    """
    name = name.strip().rstrip("/")
    if not name:
        return False
    location = str(candidate.get("source") or "").rstrip("/")
    location = location[:-4] if location.endswith(".git") else location
    return (
        name == candidate.get("source_name")
        or name == location
        or location.endswith("/" + name.removesuffix(".git"))
        or str(candidate.get("source_uid") or "").startswith(name)
    )


def source_rank(candidate: dict, order: tuple[str, ...]) -> int:
    """The place of the candidate's source in the user's ``order`` (names as
    :func:`source_matches` reads them); sources it does not name come after those it does.

    >>> source_rank({"source": "/r/cm4mlops"}, ("mlperf-automations", "cm4mlops"))
    1
    """
    return next((i for i, n in enumerate(order) if source_matches(candidate, n)), len(order))


def order_key(candidate: dict, order: tuple[str, ...] = ()) -> tuple:
    """The key that puts candidates in the order they are chosen: the user's source order
    (:func:`source_rank` of ``order``, or the candidate's ``source_rank`` when ``order`` is
    empty), MLCFlow's scripts before CM's (:data:`LATER_FORMATS`), then as MLCFlow sorts
    its found scripts: the meta's ``sort``, then the folder (:func:`place`).
    """
    return (
        source_rank(candidate, order) if order else candidate.get("source_rank") or 0,
        LATER_FORMATS.get(candidate.get("format") or "", 0),
        candidate.get("sort") or 0.0,
        candidate.get("place") or candidate.get("path") or "",
        candidate.get("uid") or "",
    )


def choose(
    candidates: Iterable[dict],
    *,
    own_source: str = "",
    source: str = "",
    order: tuple[str, ...] = (),
    cached: Iterable[str] = (),
) -> Choice | None:
    """The candidate to run, chosen as MLCFlow chooses among the scripts its tags found.

    The one function for a target and for a dependency: MLCFlow sorts what its search found
    by the meta's ``sort``, then by folder, keeps those with cache entries when any has one,
    and in quiet mode takes the first (else it asks). Before that, ``source`` keeps the
    candidates of one source (``--source``); ``own_source`` (the dependent's source) wins
    where it has any, so that a CM script's dependencies stay CM's; ``order`` is the user's
    source order (:func:`order_key`).

    Parameters
    ----------
    candidates : iterable of dict
        ``uid``, ``alias``, ``format``, ``sort`` (:func:`sort_value`), ``place``
        (:func:`place`) or ``path``, ``source_uid``, ``source`` (its location),
        ``source_name``.
    cached : iterable of str
        Uids of candidates with cache entries; ``()`` when the cache is not used.

    Returns
    -------
    Choice or None
        None when no candidate is left.

    Examples
    --------
    >>> found = [{"uid": "g", "alias": "get-gcc", "sort": 500.0, "place": "/r/script/get-gcc"},
    ...          {"uid": "l", "alias": "get-llvm", "sort": 100.0, "place": "/r/script/get-llvm"},
    ...          {"uid": "c", "alias": "get-llvm", "sort": 100.0, "format": "cm",
    ...           "place": "/a/script/get-llvm"}]
    >>> pick = choose(found)
    >>> pick.chosen["uid"], [c["uid"] for c in pick.candidates], len(pick.ask)
    ('l', ['l', 'g', 'c'], 2)
    >>> choose(found, cached=["g"]).chosen["uid"]
    'g'
    """
    found = list(candidates)
    if source:
        found = [c for c in found if source_matches(c, source)]
    if own_source and len(found) > 1:
        found = [c for c in found if c.get("source_uid") == own_source] or found
    if not found:
        return None
    keyed = sorted(((order_key(c, order), i, c) for i, c in enumerate(found)),
                   key=lambda t: t[:2])  # fmt: skip
    found = [c for _, _, c in keyed]
    # MLCFlow sees one system's scripts, from every repository the user registered: it asks
    # among those of the first group (source order, format), not across systems.
    first = keyed[0][0][:2]
    group = [c for key, _, c in keyed if key[:2] == first]
    cached = set(cached)
    group = [c for c in group if c["uid"] in cached] or group
    return Choice(
        group[0], tuple([group[0], *(c for c in found if c is not group[0])]), tuple(group)
    )
