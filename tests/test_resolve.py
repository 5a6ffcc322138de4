"""CM's tag rules for dependency resolution and find (ckg.core.resolve)."""

from hypothesis import given
from hypothesis import strategies as st

from ckg.core.records import Dependency
from ckg.core.resolve import entry_id, match_tags, parse_tags, resolve


def cand(uid, tags, variations=(), source="s1", kind="script"):
    return {
        "uid": uid,
        "alias": uid,
        "tags": list(tags),
        "variations": list(variations),
        "source_uid": source,
        "kind": kind,
    }


CANDIDATES = [
    cand("py", ["get", "python", "python3"], ["conda.#", "shared"]),
    cand("py-src", ["install", "python", "src"], ["shared"]),
    cand("cuda", ["get", "cuda"], ["cudnn"]),
    cand("cuda-devkit", ["get", "cuda", "devkit"]),
    cand("app", ["app", "demo"]),
    cand("repo", ["repo", "me@demo"], kind="repo"),
]


def one(tags, kind="deps", artifact="app"):
    return resolve([Dependency(artifact, kind, 0, tags)], CANDIDATES)[0]


def test_every_plain_tag_must_match():
    assert one(["get", "python3"]).matches == ("py",)
    assert one(["get", "python3", "nope"]).status == "missing"


def test_minus_tag_excludes_artifacts_that_have_it():
    assert one(["get", "cuda"]).status == "ambiguous"
    assert one(["get", "cuda", "-devkit"]).matches == ("cuda",)


def test_variation_tag_keeps_only_artifacts_declaring_it():
    assert one(["python", "_shared"]).matches == ("py", "py-src")
    assert one(["get", "cuda", "_cudnn"]).matches == ("cuda",)
    assert one(["get", "cuda", "_tensorrt"]).status == "missing"


def test_wildcard_variation_accepts_any_value():
    assert one(["get", "python", "_conda.myenv"]).matches == ("py",)
    assert one(["get", "python", "_conda.#"]).matches == ("py",)
    assert one(["get", "python", "_condaX"]).status == "missing"


def test_minus_variation_does_not_filter_the_search():
    assert one(["get", "python", "-_shared"]).matches == ("py",)


def test_tags_are_case_sensitive():
    assert one(["GET", "python3"]).status == "missing"


def test_dependency_kind_restricts_the_kind_of_artifact_matched():
    assert one(["repo", "me@demo"], kind="deps").status == "missing"
    assert one(["repo", "me@demo"], kind="repo_deps").matches == ("repo",)


def test_entry_without_tags_matches_nothing():
    assert one([]).status == "missing"


def test_same_source_wins_over_other_sources():
    cands = [
        cand("a", ["get", "x"], source="s1"),
        cand("b", ["get", "x"], source="s2"),
        cand("c", ["get", "x"], source="s2"),
        cand("app", ["app"], source="s2"),
    ]
    deps = [Dependency("app", "deps", 0, ["get", "x"])]
    assert resolve(deps, cands)[0].matches == ("b", "c")
    cands[2]["source_uid"] = "s3"
    assert resolve(deps, cands)[0].matches == ("b",)
    cands[1]["source_uid"] = "s3"  # nothing in the app's own source: all sources count
    assert resolve(deps, cands)[0].matches == ("a", "b", "c")


def test_resolution_names_the_entry_and_keeps_order():
    deps = [
        Dependency("app", "deps", 0, ["get", "cuda"], via_variation="gpu"),
        Dependency("app", "post_deps", 3, ["get", "python3"]),
    ]
    results = resolve(deps, CANDIDATES)
    assert [r.entry for r in results] == ["app#deps#gpu#0", "app#post_deps##3"]
    assert [r.entry for r in results] == [entry_id(d) for d in deps]
    assert [r.status for r in results] == ["ambiguous", "ok"]
    assert results[1].dependency is deps[1]


def test_match_tags_is_find_with_the_same_rules():
    assert [c["uid"] for c in match_tags("get,-devkit", CANDIDATES)] == ["py", "cuda"]
    assert [c["uid"] for c in match_tags(["python", "_shared"], CANDIDATES)] == ["py", "py-src"]
    assert len(match_tags("", CANDIDATES)) == len(CANDIDATES)
    assert [c["uid"] for c in match_tags("", CANDIDATES, kinds=["repo"])] == ["repo"]


def test_parse_tags_splits_roles_and_ignores_blanks():
    q = parse_tags(" get , python3,,-cuda,_conda.x,-_y ")
    assert (q.plain, q.excluded, q.variations) == (("get", "python3"), ("cuda",), ("conda.x",))


TAGS = st.sampled_from(["a", "b", "c", "d", "e"])


@given(
    st.lists(st.tuples(st.sets(TAGS), st.sets(TAGS)), min_size=1, max_size=12),
    st.lists(st.sampled_from(["a", "b", "c", "-a", "-b", "-d", "_c", "_e"]), max_size=4),
)
def test_index_agrees_with_a_plain_scan(artifacts, query):
    cands = [cand(str(i), tags, vars_) for i, (tags, vars_) in enumerate(artifacts)]

    def wanted(c):
        tags, declared = set(c["tags"]), set(c["variations"])
        return all(
            (t[1:] not in tags)
            if t.startswith("-")
            else (t[1:] in declared)
            if t.startswith("_")
            else (t in tags)
            for t in query
        )

    assert match_tags(query, cands) == [c for c in cands if wanted(c)]
