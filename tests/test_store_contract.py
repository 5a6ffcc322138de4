"""The store contract: every test runs on the embedded FalkorDB engine and on a real Neo4j."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from ckg.core.errors import QueryError
from ckg.core.records import Edge, Node, Records
from ckg.store import open_store

HOSTILE = [
    "quote \" and ' both",
    "back\\slash and \\n not a newline, \\\\ two",
    "line one\nline two\r\n\ttabbed",
    "non-ASCII: é ü 中文 🚀",
    '"}) DETACH DELETE n //',
    "'}) MATCH (m) DETACH DELETE m RETURN 1 //",
    "",
]


def artifact_rows(count, start=0):
    return [{"key": f"a{i}", "props": {"alias": f"alias-{i}"}} for i in range(start, start + count)]


def test_schema_indexes_the_tags_artifacts_are_found_by(store):
    """An artifact's tags are indexed (ckg.core.schema.NODE_INDEXES): without, ``ckg run
    get,python3`` and ``ckg find`` tested every artifact of the graph."""
    store.ensure_schema()
    if store.engine == "falkordb":
        rows = store.run("CALL db.indexes() YIELD label, properties "
                         "RETURN [label] AS labels, properties")  # fmt: skip
    else:
        rows = store.run("SHOW INDEXES YIELD labelsOrTypes, properties "
                         "RETURN labelsOrTypes AS labels, properties")  # fmt: skip
    indexed = {(label, name) for r in rows for label in r["labels"] or []
               for name in r["properties"] or []}  # fmt: skip
    assert {("Artifact", "uid"), ("Artifact", "tags")} <= indexed


def test_same_batch_twice_leaves_same_counts(store):
    rows = artifact_rows(300)
    store.upsert_nodes("Artifact", rows)
    edges = [{"src": f"a{i}", "dst": f"a{i + 1}", "props": {"kind": "deps"}} for i in range(299)]
    store.upsert_edges("DEPENDS_ON", "Artifact", "Artifact", edges)
    first = store.counts()
    store.upsert_nodes("Artifact", rows)
    store.upsert_edges("DEPENDS_ON", "Artifact", "Artifact", edges)
    assert (
        store.counts()
        == first
        == {
            "nodes": {"Artifact": 300},
            "relationships": {"DEPENDS_ON": 299},
        }
    )


def test_upsert_updates_properties_in_place(store):
    store.upsert_nodes("Artifact", [{"key": "x", "props": {"alias": "old", "kind": "script"}}])
    store.upsert_nodes("Artifact", [{"key": "x", "props": {"alias": "new"}}])
    assert store.get_node("Artifact", "x") == {"uid": "x", "alias": "new", "kind": "script"}


def test_update_nodes_sets_existing_matching_nodes_only_and_delete_nodes_detaches(store):
    store.upsert_nodes(
        "Run", [{"key": k, "props": {"status": s}} for k, s in (("r1", "running"), ("r2", "ok"))]
    )
    store.update_nodes(
        "Run", ["r1", "r2", "r3"], {"status": "lost", "error": "gone"}, where={"status": "running"}
    )
    assert store.get_node("Run", "r1") == {"uid": "r1", "status": "lost", "error": "gone"}
    assert store.get_node("Run", "r2") == {"uid": "r2", "status": "ok"}
    assert store.get_node("Run", "r3") is None  # nothing is made
    store.upsert_nodes("CacheEntry", [{"key": "c1", "props": {}}])
    store.upsert_edges("MADE", "Run", "CacheEntry", [{"src": "r2", "dst": "c1", "props": {}}])
    store.delete_nodes("CacheEntry", ["c1", "c2"])
    assert store.get_node("CacheEntry", "c1") is None
    assert store.get_node("Run", "r2") == {"uid": "r2", "status": "ok"}


def test_fifty_thousand_node_batch(store):
    written = store.upsert_nodes("Artifact", artifact_rows(50_000), batch_size=50_000)
    assert written == 50_000
    assert store.run("MATCH (a:Artifact) RETURN count(a) AS n") == [{"n": 50_000}]
    assert store.get_node("Artifact", "a49999")["alias"] == "alias-49999"


def test_relationships_join_existing_nodes_only(store):
    store.upsert_nodes("Artifact", artifact_rows(3))
    store.upsert_edges(
        "DEPENDS_ON",
        "Artifact",
        "Artifact",
        [
            {"src": "a0", "dst": "a1", "props": {"kind": "deps", "tags": ["get", "python"]}},
            {"src": "a1", "dst": "missing", "props": {}},
        ],
    )
    rows = store.run(
        "MATCH (a:Artifact)-[r:DEPENDS_ON]->(b:Artifact) RETURN a.uid AS a, b.uid AS b, r"
    )
    assert rows == [{"a": "a0", "b": "a1", "r": {"kind": "deps", "tags": ["get", "python"]}}]
    assert store.run("MATCH (n) RETURN count(n) AS n") == [{"n": 3}]


@pytest.mark.parametrize("text", HOSTILE)
def test_strings_round_trip_verbatim(store, text):
    store.upsert_nodes("Artifact", [{"key": text or "empty", "props": {"alias": text}}])
    store.upsert_nodes("Artifact", [{"key": "bystander", "props": {"alias": "stays"}}])
    assert store.run("MATCH (a:Artifact {alias: $t}) RETURN a.alias AS v", {"t": text}) == [
        {"v": text}
    ]
    assert store.get_node("Artifact", text or "empty")["alias"] == text
    assert store.run("MATCH (n) RETURN count(n) AS n") == [{"n": 2}]


def test_list_and_json_text_properties(store):
    meta = '{"deps": [{"tags": "get,python3", "names": ["python"]}], "note": "a \\"q\\""}'
    props = {"tags": ["get", "python3", "é"], "sizes": [1, 2, 3], "meta": meta, "ok": True}
    store.upsert_nodes("Artifact", [{"key": "p", "props": props}])
    node = store.get_node("Artifact", "p")
    assert node == {"uid": "p", **props}
    assert store.run(
        "MATCH (a:Artifact) WHERE $t IN a.tags RETURN a.uid AS uid", {"t": "python3"}
    ) == [{"uid": "p"}]


def test_numbers_and_nulls(store):
    props = {"value": 0.8428, "count": 2**40, "negative": -3, "missing": None}
    store.upsert_nodes("Measurement", [{"key": "m", "props": props}])
    node = store.get_node("Measurement", "m")
    assert node == {"uid": "m", "value": 0.8428, "count": 2**40, "negative": -3}


def test_a_refused_batch_raises_and_the_store_stays_usable(store):
    rows = [
        {"key": "ok-1", "props": {"alias": "one"}},
        {"key": "bad", "props": {"nested": {"maps": "are refused"}}},
        {"key": "ok-2", "props": {"alias": "two"}},
    ]
    with pytest.raises(QueryError):
        store.upsert_nodes("Artifact", rows, batch_size=1)
    assert store.get_node("Artifact", "ok-1") == {"uid": "ok-1", "alias": "one"}
    assert store.get_node("Artifact", "bad") is None
    assert store.run("RETURN 1 AS one") == [{"one": 1}]


def test_key_uniqueness_enforced(store):
    store.upsert_nodes("Artifact", artifact_rows(1))
    with pytest.raises(QueryError):
        store.write("CREATE (:Artifact {uid: 'a0'})")
    assert store.run("MATCH (a:Artifact {uid: 'a0'}) RETURN count(a) AS n") == [{"n": 1}]


def test_cypher_error_carries_engine_message(store):
    with pytest.raises(QueryError, match=r"(?i)invalid input|syntax"):
        store.run("MATCH (n RETURN n")


def test_transaction_applies_all_statements(store):
    with store.transaction() as tx:
        tx.run("MERGE (:Tag {name: $n})", {"n": "one"})
        tx.run("MERGE (:Tag {name: $n})", {"n": "two"})
    names = store.run("MATCH (t:Tag) RETURN t.name AS n ORDER BY n")
    assert names == [{"n": "one"}, {"n": "two"}]


def test_transaction_that_raises_applies_nothing(store):
    with pytest.raises(RuntimeError, match="stop"):
        with store.transaction() as tx:
            tx.run("MERGE (:Tag {name: $n})", {"n": "one"})
            raise RuntimeError("stop")
    assert store.run("MATCH (t:Tag) RETURN count(t) AS n") == [{"n": 0}]


@pytest.mark.parametrize("one_transaction", [False, True])
def test_write_records_groups_labels_and_types(store, one_transaction):
    records = Records(
        nodes=[
            Node("Source", "s1", {"location": "/tmp/x", "complete": True}),
            Node("Artifact", "a1", {"alias": "one"}),
            Node("Artifact", "a2", {"alias": "two"}),
        ],
        edges=[
            Edge("CONTAINS", "Source", "s1", "Artifact", "a1"),
            Edge("CONTAINS", "Source", "s1", "Artifact", "a2"),
            Edge("DEPENDS_ON", "Artifact", "a1", "Artifact", "a2", {"kind": "deps"}),
        ],
    )
    store.write_records(records, one_transaction=one_transaction)
    store.write_records(records, one_transaction=one_transaction)  # idempotent
    assert store.counts() == {
        "nodes": {"Source": 1, "Artifact": 2},
        "relationships": {"CONTAINS": 2, "DEPENDS_ON": 1},
    }


def _graph(store) -> tuple[list, list]:
    """Every node (label, properties) and edge (type, ends, properties) of the graph."""
    nodes = store.run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    edges = store.run(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, properties(a) AS a, "
        "properties(b) AS b, properties(r) AS props"
    )

    def key(item):
        return json.dumps(item, sort_keys=True)

    return sorted(nodes, key=key), sorted(edges, key=key)


def test_records_written_around_their_hub_leave_the_graph_of_the_plain_order(store):
    """write_records writes the most common label's nodes with their edges (one statement
    row each, properties as a list per set of names): the graph must be the one the plain
    order (every node, then every edge, as one_transaction sends them) leaves, whatever
    the records hold: nodes and edges listed twice, nulls, names of any text, ends the
    records lack, two ends of one kind, edges between two hub nodes, rows of other shapes."""
    before = Records(
        nodes=[
            Node("Result", "r0", {"uid": "r0", "value": 1.0, "gone": "x"}),
            Node("Platform", "p-old", {"uid": "p-old"}),
        ],
    )
    results = [
        Node(
            "Result",
            f"r{i}",
            {"uid": f"r{i}", "metric": "f1", "value": i / 3, "odd name": [f"a{i}"], "a-b.c": i},
        )
        for i in range(150)
    ]
    results += [
        Node("Result", f"s{i}", {"uid": f"s{i}", "value": i, "stderr": None}) for i in range(3)
    ]
    results.append(Node("Result", "r0", {"gone": None, "late": True}))  # listed twice
    records = Records(
        nodes=[
            *results,
            Node("Metric", "f1", {"name": "f1"}),
            Node("Task", "QA", {"name": "QA"}),
            Node("Paper", "p1", {"uid": "p1"}),
            Node("Paper", "p2", {"uid": "p2"}),
        ],
        edges=[
            *(Edge("OF_METRIC", "Result", n.key, "Metric", "f1") for n in results[:-1]),
            *(Edge("FOR_TASK", "Result", f"r{i}", "Task", "QA") for i in range(0, 150, 2)),
            *(Edge("REPORTS", "Paper", "p1", "Result", f"r{i}", {"w": i}) for i in range(100)),
            Edge("REPORTS", "Paper", "p2", "Result", "r5"),  # a second paper of one result
            Edge("REPORTS", "Paper", "p1", "Result", "r7", {"again": 1}),  # listed twice
            Edge("ON", "Result", "r1", "Platform", "p-old"),  # an end only the graph has
            Edge("ON", "Result", "r2", "Platform", "p-none"),  # an end nobody has
            Edge("SAME_AS", "Result", "r1", "Result", "r2"),  # between two hub nodes
            Edge("OF_METRIC", "Result", "nowhere", "Metric", "f1"),  # a hub node nobody has
        ],
    )
    graphs = []
    for one_transaction in (True, False):
        store.reset()
        store.write_records(before)
        store.write_records(records, one_transaction=one_transaction)
        graphs.append(_graph(store))
    assert graphs[0] == graphs[1]
    nodes, edges = graphs[1]
    assert len(nodes) == 153 + 4 + 1 and len(edges) == 153 + 75 + 101 + 1 + 1
    assert {
        "uid": "r0",
        "value": 0.0,
        "metric": "f1",
        "odd name": ["a0"],
        "a-b.c": 0,
        "late": True,
    } in [n["props"] for n in nodes]


def test_hub_nodes_another_writer_made_meanwhile_are_merged(store, monkeypatch):
    """A hub node taken for new is created; when another writer made it after the look
    (here: the look says none exist, all do), the key's constraint refuses the batch and
    it is merged instead: no error, no second node or edge."""
    records = Records(
        nodes=[
            *(Node("Result", f"r{i}", {"uid": f"r{i}", "value": i}) for i in range(100)),
            Node("Metric", "f1", {"name": "f1"}),
        ],
        edges=[Edge("OF_METRIC", "Result", f"r{i}", "Metric", "f1") for i in range(100)],
    )
    store.write_records(records)
    first = _graph(store)
    monkeypatch.setattr(store, "existing", lambda label, keys, batch_size: set())
    store.write_records(records)
    assert _graph(store) == first
    assert store.counts()["relationships"] == {"OF_METRIC": 100}


def test_reset_empties_the_graph(store):
    store.upsert_nodes("Artifact", artifact_rows(25))
    store.reset()
    assert store.counts() == {"nodes": {}, "relationships": {}}


def test_data_survives_close_and_reopen(store, ckg_home):
    store.upsert_nodes("Paper", [{"key": "arxiv:1706.03762", "props": {"title": "Attention"}}])
    uri = "embedded" if store.engine == "falkordb" else store.location
    store.close()
    if store.engine == "falkordb":
        from ckg.store.server import stop_server

        assert stop_server(ckg_home) is not None
    with open_store(uri, home=ckg_home) as reopened:
        assert reopened.get_node("Paper", "arxiv:1706.03762")["title"] == "Attention"


WRITER = textwrap.dedent(
    """
    import sys
    from ckg.store import open_store
    prefix, uri, home = sys.argv[1], sys.argv[2], sys.argv[3]
    with open_store(uri, home=home) as store:
        store.ensure_schema()
        for batch in range(10):
            rows = [{"key": f"{prefix}-{batch}-{i}", "props": {"w": prefix}} for i in range(200)]
            store.upsert_nodes("Artifact", rows, batch_size=50)
    """
)


def test_two_processes_writing_at_once_lose_nothing(store, ckg_home):
    uri = "embedded" if store.engine == "falkordb" else store.location
    store.close()
    if store.engine == "falkordb":
        from ckg.store.server import stop_server

        stop_server(ckg_home)  # both writers race to start the server
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, name, uri, str(ckg_home)])
        for name in ("left", "right")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with open_store(uri, home=ckg_home) as reopened:
        rows = reopened.run("MATCH (a:Artifact) RETURN a.w AS w, count(a) AS n ORDER BY w")
    assert rows == [{"w": "left", "n": 2000}, {"w": "right", "n": 2000}]


def test_ingest_lock_makes_a_second_writer_wait_and_names_the_holder(store, ckg_home):
    uri = "embedded" if store.engine == "falkordb" else store.location
    told: list[str] = []
    order: list[str] = []
    arrived = threading.Event()

    def second():
        with open_store(uri, home=ckg_home) as other, other.ingest_lock(told.append):
            order.append("second")

    with store.ingest_lock(lambda line: arrived.set()) as held:
        waiter = threading.Thread(target=second, daemon=True)
        waiter.start()
        while not told and waiter.is_alive():
            waiter.join(0.05)
        assert told and order == []  # it said why it waits, and waits
        held.confirm()
        order.append("first")
    waiter.join(60)
    assert order == ["first", "second"] and not arrived.is_set()
    assert told[0].startswith(
        f"waiting for another ingest into {store.location} (pid {os.getpid()}"
    ), told


def test_ingest_lock_is_free_again_when_the_block_raises(store):
    with pytest.raises(RuntimeError, match="boom"), store.ingest_lock(print):
        raise RuntimeError("boom")
    told: list[str] = []
    with store.ingest_lock(told.append) as held:
        held.confirm()
    assert told == []


def test_delete_unlisted_removes_what_a_source_no_longer_holds_and_only_that(store):
    rows = [{"key": f"r{i}", "props": {"source_uid": "s1" if i < 3 else "s2"}} for i in range(5)]
    store.upsert_nodes("Result", rows)
    store.upsert_nodes("Paper", [{"key": "p", "props": {}}])
    store.upsert_edges("REPORTS", "Paper", "Result", [{"src": "p", "dst": "r0", "props": {}}])
    assert store.delete_unlisted("Result", "s1", ["r1"]) == 2
    left = store.run("MATCH (r:Result) RETURN r.uid AS uid ORDER BY uid")
    assert [r["uid"] for r in left] == ["r1", "r3", "r4"]
    assert store.counts()["relationships"] == {}
    assert store.delete_unlisted("Result", "nobody", []) == 0


def test_delete_nodes_and_update_nodes_touch_the_keys_named_only(store):
    store.upsert_nodes("CacheEntry", [{"key": k, "props": {"n": 1}} for k in "abc"])
    store.update_nodes("CacheEntry", ["a", "b", "zz"], {"n": 2}, where={"n": 1})
    store.update_nodes("CacheEntry", ["b"], {"n": 3}, where={"n": 1})  # b is 2 now: left
    store.delete_nodes("CacheEntry", ["c", "zz"])
    rows = store.run("MATCH (c:CacheEntry) RETURN c.uid AS uid, c.n AS n ORDER BY uid")
    assert rows == [{"uid": "a", "n": 2}, {"uid": "b", "n": 2}]


def test_replace_incoming_swaps_one_type_of_edge_into_a_node_and_drops_none_props(store):
    store.upsert_nodes("Run", [{"key": k, "props": {}} for k in ("a", "b", "c")])
    store.upsert_nodes("Front", [{"key": "f", "props": {"stale": "a removed", "points": 2}}])
    store.upsert_edges(
        "IN_FRONT",
        "Run",
        "Front",
        [{"src": k, "dst": "f", "props": {"front_rank": 1}} for k in ("a", "b")],
    )
    store.upsert_edges("IN", "Run", "Front", [{"src": "a", "dst": "f", "props": {}}])
    records = Records(
        [Node("Front", "f", {"points": 1, "stale": None})],
        [Edge("IN_FRONT", "Run", "c", "Front", "f", {"front_rank": 2})],
    )
    store.replace_incoming("IN_FRONT", "Front", "f", records)
    edges = store.run(
        "MATCH (r:Run)-[x]->(:Front) RETURN r.uid AS run, type(x) AS t, "
        "x.front_rank AS rank ORDER BY t, run"
    )
    assert edges == [
        {"run": "a", "t": "IN", "rank": None},
        {"run": "c", "t": "IN_FRONT", "rank": 2},
    ]
    assert store.get_node("Front", "f") == {"uid": "f", "points": 1}


def test_reads_by_label_pages_counts_and_outgoing_edges(store):
    store.upsert_nodes("Artifact", artifact_rows(5))
    store.upsert_nodes("Paper", [{"key": "p1", "props": {"title": "T"}}])
    store.upsert_edges(
        "IMPLEMENTS", "Artifact", "Paper", [{"src": "a1", "dst": "p1", "props": {"w": 1}}]
    )
    keys = [f"a{i}" for i in range(5)]
    assert store.page("Artifact", None, 2, whole=False) == sorted(keys)[:2]
    assert store.page("Artifact", sorted(keys)[3], 10, whole=False) == sorted(keys)[4:]
    assert [n["uid"] for n in store.page("Artifact", None, 2)] == sorted(keys)[:2]
    assert store.count_nodes("Artifact") == 5 and store.count_nodes("Run") == 0
    assert store.relationship_counts() == {"IMPLEMENTS": 1}
    assert sorted(store.label_sets()) == [(("Artifact",), 5), (("Paper",), 1)]
    assert store.existing("Artifact", ["a1", "zz"]) == {"a1"}
    assert store.outgoing("Artifact", ["a1", "a2"]) == [
        {"src": "a1", "type": "IMPLEMENTS", "label": "Paper", "key": "p1", "props": {"w": 1}}
    ]
    [row] = store.outgoing("Artifact", ["a1"], nodes=True)
    assert row["node"] == {"uid": "p1", "title": "T"}


def test_keyed_edges_join_two_nodes_once_per_key(store):
    store.upsert_nodes("Artifact", artifact_rows(2))
    rows = [
        {"src": "a0", "dst": "a1", "key": e, "props": {"entry": e, "n": i}}
        for i, e in enumerate(["x", "y", "x"])
    ]
    assert store.upsert_keyed_edges("DEPENDS_ON", "Artifact", "Artifact", "entry", rows[:2]) == 2
    store.upsert_keyed_edges("DEPENDS_ON", "Artifact", "Artifact", "entry", rows[2:])
    got = store.run("MATCH ()-[r:DEPENDS_ON]->() RETURN r.entry AS e, r.n AS n ORDER BY e")
    assert got == [{"e": "x", "n": 2}, {"e": "y", "n": 1}]


def test_deletes_of_owned_nodes_outgoing_edges_and_edges_by_property(store):
    store.upsert_nodes("Artifact", artifact_rows(3))
    store.upsert_nodes("Variation", [{"key": "v0", "props": {}}, {"key": "v2", "props": {}}])
    store.upsert_edges(
        "HAS_VARIATION",
        "Artifact",
        "Variation",
        [{"src": "a0", "dst": "v0", "props": {}}, {"src": "a2", "dst": "v2", "props": {}}],
    )
    rows = [{"src": s, "dst": "a1", "key": s, "props": {"entry": s}} for s in ("a0", "a2")]
    store.upsert_keyed_edges("DEPENDS_ON", "Artifact", "Artifact", "entry", rows)
    store.delete_reached("Artifact", ["a0"], "HAS_VARIATION", "Variation")
    assert store.count_nodes("Variation") == 1
    store.delete_edges("DEPENDS_ON", "entry", ["a2", "nope"])
    assert store.relationship_counts() == {"DEPENDS_ON": 1, "HAS_VARIATION": 1}
    store.delete_outgoing("Artifact", ["a0", "a1"])
    assert store.relationship_counts() == {"HAS_VARIATION": 1}
    assert store.count_nodes("Artifact") == 3
