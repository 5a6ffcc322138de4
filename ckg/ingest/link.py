"""Link papers to the code that implements them, whichever came into the graph first.

Called by ``ckg ingest`` (for the source it wrote) and by ``ckg results import`` (for every
source): a paper whose code link is an ingested repository gets
``(Artifact)-[:IMPLEMENTS]->(Paper)`` from that repository's project artifact.
"""

from ckg.formats.papers import repo_url
from ckg.graph.lookup import papers_with_code_at, project_artifacts


def link_code(store, source: str | None = None) -> int:
    """``(Artifact)-[:IMPLEMENTS]->(Paper)`` where a paper's code link is an ingested repository.

    A paper's ``code_urls`` (normalised repository URLs) are matched against each ``Source``'s
    ``location`` and Git ``origin`` (a local clone's remote), normalised the same way; the
    source's ``generic`` artifacts (the project itself, not the scripts inside a CM repository)
    get the edge. Called after results are imported and after a source is ingested, so either
    order links. Only missing edges are written.

    Parameters
    ----------
    store : GraphStore
    source : str, optional
        Only this ``Source`` uid's artifacts (an ingest); every source when None.

    Returns
    -------
    int
        The edges added.

    Examples
    --------
    >>> link_code(kg.store, source=summary.uid)                    # doctest: +SKIP
    1
    """
    artifacts = project_artifacts(store, source)
    repos = {
        row["artifact"]: {repo_url(row["location"]), repo_url(row["origin"])} - {None}
        for row in artifacts
    }
    if not any(repos.values()):
        return 0
    wanted = sorted(set().union(*repos.values()))
    by_repo: dict[str, list[str]] = {}
    for row in papers_with_code_at(store, wanted):
        for url in row["urls"] or []:
            by_repo.setdefault(url, []).append(row["uid"])
    linked = {row["artifact"]: set(row["papers"]) for row in artifacts}
    rows = [
        {"src": artifact, "dst": paper, "props": {}}
        for artifact, urls in repos.items()
        for paper in sorted({p for url in urls for p in by_repo.get(url, ())})
        if paper not in linked[artifact]
    ]
    if rows:
        store.upsert_edges("IMPLEMENTS", "Artifact", "Paper", rows)
    return len(rows)
