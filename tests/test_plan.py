"""The planner: guards, variations, environment, cycles and order (ckg.plan)."""

import contextlib
import doctest
import json
import sys

import networkx as nx
import pytest

from ckg import mlc
from ckg.cli import main
from ckg.core.errors import CycleError, UsageError
from ckg.core.resolve import resolve
from ckg.formats import cm
from ckg.ingest.write import DEP_FIELDS
from ckg.mlc import env as mlc_env
from ckg.mlc import guards, versions
from ckg.mlc import variations as mlc_variations
from ckg.mlc.guards import blocked_by, key_matches
from ckg.plan import build_plan, core, graph, load_graph, memo, variations
from ckg.plan import env as env_mod
from ckg.plan.variations import VariationError, choose


def art(uid, alias=None, **meta):
    return {"uid": uid, "alias": alias or uid, "kind": "script", "meta": json.dumps(meta)}


def dep(src, dst, tags, kind="deps", position=0, **props):
    guard = {k: props.pop(k) for k in list(props) if k.endswith("_env")}
    return {
        "src": src,
        "dst": dst,
        "kind": kind,
        "position": position,
        "tags": tags.split(","),
        "guard": json.dumps(guard) if guard else "",
        **props,
    }


def ids(plan):
    return [s.id for s in plan.steps]


# --- guards: one answer, MLCFlow's, for the planner and the engine --------------------------


@pytest.mark.parametrize(
    ("expected", "value", "matches"),
    [
        ([True], "yes", True),  # YAML `yes` is a boolean: it reads as "true"
        (["yes"], "on", True),
        (["yes"], "anything", True),  # a true word accepts any value but a false word
        (["yes"], "off", False),
        (["no"], "0", True),
        (["no"], "yes", False),
        (["cuda", "rocm"], "ROCM", True),  # lists are any-of, compared lower-case
        (["cuda"], "cpu", False),
        ("cuda", "cuda", True),  # a scalar is a one-element list (CM reads it letter by letter)
    ],
)
def test_key_matches_follows_mlcflow_rules(expected, value, matches):
    assert key_matches(expected, {"K": value}, "K") is matches


def guarded(guard: dict, env: dict, meta_env: dict | None = None):
    """app with one dependency, lib, under ``guard``; ``env`` is the user's, ``meta_env``
    app's own."""
    arts = [art("a", "app", env=meta_env or {}), art("l", "lib")]
    return build_plan(load_graph(arts, [dep("a", "l", "lib", **guard)]), "a", env=env)


#: (guard, user env, app's meta env, whether lib runs): MLCFlow's enable_or_skip_script and
#: any_enable_or_skip_script. The planner read the first three the other way round.
GUARD_CASES = {
    "absent key expected false": ({"enable_if_env": {"A": ["no"]}}, {}, {}, True),
    "empty value is unset": ({"skip_if_env": {"A": ["yes"]}}, {"A": ""}, {}, True),
    "unresolved reference is unset": ({"skip_if_env": {"A": ["on"]}}, {}, {"A": "<<<B>>>"}, True),
    "absent key never matches an any form": ({"enable_if_any_env": {"A": ["no"]}}, {}, {}, False),
}


@pytest.mark.parametrize("case", GUARD_CASES)
def test_guard_has_one_answer_in_plan_and_run(case):
    guard, env, meta_env, runs = GUARD_CASES[case]
    assert ("lib" in ids(guarded(guard, env, meta_env))) is runs
    # the engine's test, on the env the step sees
    assert mlc.skipped(guard, {**meta_env, **env}) is not runs


def test_cm_reads_an_unresolved_reference_as_a_value():
    guard = {"skip_if_env": {"A": ["on"]}}
    assert mlc.skipped(guard, {"A": "<<<B>>>"}, mlc.CM) is True
    assert mlc.skipped(guard, {"A": "<<<B>>>"}) is False


def test_guard_over_a_key_a_dependency_exports_is_decided_at_run_time():
    arts = [art("a", "app"), art("o", "detect-os", new_env_keys=["OS_*"]), art("l", "lib")]
    edges = [
        dep("a", "o", "detect,os"),
        dep("a", "l", "lib", position=1, enable_if_env={"OS_TYPE": ["linux"]}),
    ]
    plan = build_plan(load_graph(arts, edges), "a")
    assert plan.step("lib").at_run_time == "app deps if OS_TYPE=linux"
    assert plan.step("detect-os").at_run_time == ""
    assert "at run time: app deps if OS_TYPE=linux" in plan.to_dot()
    # the user's --env is MLCFlow's const: known, so decided now
    assert "lib" not in ids(build_plan(load_graph(arts, edges), "a", env={"OS_TYPE": "mac"}))


def test_prehook_guard_over_a_meta_key_is_decided_at_run_time():
    arts = [art("a", "app", env={"NEED": "no"}), art("i", "install")]
    edges = [dep("a", "i", "install", kind="prehook_deps", enable_if_env={"NEED": ["yes"]})]
    plan = build_plan(load_graph(arts, edges), "a")  # customize.py may set NEED=yes
    assert plan.step("install").at_run_time == "app prehook_deps if NEED=yes"


def test_variations_from_env_that_customize_sets_are_decided_at_run_time():
    """get-mlperf-inference-src's prehook get,git,repo takes _repo./_branch. from env its
    preprocess sets: the plan cannot know them."""
    entry = {"tags": "get,repo", "update_tags_from_env_with_prefix": {"_repo.": ["GIT_URL"]}}
    arts = [art("a", "app", prehook_deps=[entry]), art("r", "get-repo", variations={"repo.#": {}})]
    edges = [{"src": "a", "dst": "r", "entry": "a#prehook_deps##0"}]
    plan = build_plan(load_graph(arts, edges), "a")
    assert plan.step("get-repo").at_run_time == "app prehook_deps tags from GIT_URL"
    plan = build_plan(load_graph(arts, edges), "a", env={"GIT_URL": "u"})
    assert plan.step("get-repo _repo.u").at_run_time == ""


def test_a_dependency_inherits_its_callers_variations_as_it_runs():
    """inherit_variation_tags (11 scripts of mlperf-automations): the planner dropped them."""
    declared = {"cpu": {"group": "d"}, "cuda": {"group": "d"}, "fp32": {}}
    entry = {"tags": "get,lib,-_fp32", "inherit_variation_tags": True}
    arts = [art("a", "app", deps=[entry], variations=declared)]
    arts.append(art("l", "lib", variations=declared))
    edges = [{"src": "a", "dst": "l", "entry": "a#deps##0"}]
    plan = build_plan(load_graph(arts, edges), "a", variations=["cuda", "fp32"])
    assert plan.step("lib _cuda").variations == ["cuda"]  # -_fp32 in its tags keeps fp32 off


def test_all_forms_need_every_key_and_any_forms_one():
    env = {"A": "yes", "B": "no"}
    assert blocked_by({"enable_if_env": {"A": ["yes"], "B": ["yes"]}}, env)
    assert blocked_by({"enable_if_any_env": {"A": ["yes"], "B": ["yes"]}}, env) is None
    assert blocked_by({"skip_if_env": {"A": ["yes"], "B": ["yes"]}}, env) is None
    assert blocked_by({"skip_if_any_env": {"A": ["yes"], "B": ["yes"]}}, env).startswith(
        "skip_if_any_env"
    )


# --- variations: MLCFlow's order and defaults -----------------------------------------------

VARIATIONS = {
    "cpu": {"group": "device", "default": True, "env": {"DEV": "cpu"}},
    "cuda": {"group": "device", "env": {"DEV": "cuda"}},
    "gpu": {"alias": "cuda"},
    "fp16": {"base": ["fast"], "group": "precision"},
    "fp32": {"group": "precision", "default": "yes"},
    "fast": {"default_variations": {"device": "cuda"}},
    "package.#": {"env": {"PKG": "#"}},
    "cuda,fp16": {"env": {"HALF_ON_GPU": "yes"}},
}


def test_group_default_applies_when_group_is_empty():
    assert choose(VARIATIONS, []) == ["cpu", "fp32"]


def test_alias_is_kept_beside_what_it_stands_for():
    assert choose(VARIATIONS, ["gpu"]) == ["gpu", "cuda", "fp32"]


def test_base_variations_go_first_in_plan_and_run():
    """_add_base_variations inserts each base at the front; the planner put it after."""
    assert choose(VARIATIONS, ["fp16"]) == ["fast", "fp16", "cuda"]
    assert choose({"x": {"base": ["y", "z"]}, "y": {}, "z": {}}, ["x"]) == ["z", "y", "x"]
    arts = [art("a", "app", variations={"x": {"base": ["y"]}, "y": {"env": {"V": "y"}}})]
    step = build_plan(load_graph(arts, []), "a", variations=["x"]).step("app")
    assert step.variations == ["y", "x"]
    assert step.variations == [t for t in mlc.choose(step.meta, ["x"]) if t[0] != "-"]


def test_cm_appends_a_base_where_mlcflow_puts_it_first():
    """One rule book, CM's difference as data (``ckg.mlc.CM``)."""
    meta = {"variations": {"numpy": {"base": ["pip"]}, "pip": {}}}
    assert mlc.choose(meta, ["numpy"]) == ["pip", "numpy"]
    assert mlc.choose(meta, ["numpy"], dialect=mlc.CM) == ["numpy", "pip"]


def test_two_defaults_in_one_group_are_refused_as_mlcflow_refuses_them():
    """_get_variation_groups: any ``default`` key counts, two in a group are an error."""
    two = {"a": {"group": "g", "default": True}, "b": {"group": "g", "default": False}}
    with pytest.raises(VariationError, match="group 'g' has two defaults: a and b"):
        choose(two, [], owner="app")
    with pytest.raises(UsageError, match="two defaults"):
        build_plan(load_graph([art("a", "app", variations=two)], []), "a")


def test_excluded_default_stays_off():
    assert choose(VARIATIONS, ["-fp32"]) == ["cpu"]


def test_two_variations_of_one_group_conflict():
    with pytest.raises(VariationError, match="cpu, cuda .* group 'device'"):
        choose(VARIATIONS, ["cpu", "cuda"], owner="app")


def test_undeclared_variation_is_named_with_what_is_declared():
    with pytest.raises(VariationError, match="app: variation 'tpu' is not declared .*cpu, cuda"):
        choose(VARIATIONS, ["tpu"], owner="app")


# --- env: add_deps_recursive merged as MLCFlow merges it -----------------------------------


def test_add_deps_recursive_env_of_meta_and_variation_is_merged_into_the_dependency():
    """_merge_dicts_with_tags merges dicts: the variation's env adds to the meta's; the
    planner replaced it, and dropped an update's env."""
    arts = [
        art(
            "a",
            "app",
            add_deps_recursive={"lib": {"env": {"A": "meta"}, "tags": "_x"}},
            variations={"v": {"add_deps_recursive": {"lib": {"env": {"B": "var"}}}}},
        ),
        art("l", "get-lib", variations={"x": {}}),
    ]
    edges = [dep("a", "l", "get,lib", names=["lib"])]
    step = build_plan(load_graph(arts, edges), "a", variations=["v"]).step("get-lib")
    assert (step.env["A"], step.env["B"], step.variations) == ("meta", "var", ["x"])
    merged = mlc.merge_tags_by_name({"lib": {"env": {"A": "meta"}}}, {"lib": {"env": {"B": "v"}}})
    assert merged == {"lib": {"env": {"A": "meta", "B": "v"}}}


# --- planning on small graphs -------------------------------------------------------------


def small_graph():
    """app deps: os; cuda only with USE_CUDA; lib with _package.numpy; a post-dep report."""
    arts = [
        art(
            "a",
            "app",
            default_env={"N": "1"},
            env={"FIXED": "meta"},
            variations={
                "cpu": {"group": "t", "default": True, "env": {"USE_CPU": "yes"}},
                "cuda": {"group": "t", "env": {"USE_CUDA": True}},
            },
        ),
        art("o", "detect-os"),
        art("c", "get-cuda", new_env_keys=["CM_CUDA_*"]),
        art("l", "get-lib", variations={"package.#": {"env": {"PKG": "#"}}}),
        art("r", "report"),
    ]
    edges = [
        dep("a", "o", "detect,os", position=0),
        dep("a", "c", "get,cuda", position=1, enable_if_env={"USE_CUDA": [True]}),
        dep("a", "l", "get,lib,_package.numpy", position=2),
        dep("a", "l", "get,lib,_package.pillow", position=3),
        dep("l", "o", "detect,os", position=0),
        dep("a", "r", "report", kind="post_deps", position=0),
    ]
    return load_graph(arts, edges)


def test_default_env_leaves_guarded_cuda_out():
    plan = build_plan(small_graph(), "a")
    assert ids(plan) == [
        "detect-os",
        "get-lib _package.numpy",
        "get-lib _package.pillow",
        "app _cpu",
        "report",
    ]
    assert plan.skipped == [
        {
            "step": "app _cpu",
            "kind": "deps",
            "tags": ["get", "cuda"],
            "why": "enable_if_env {'USE_CUDA': [True]}",
        }
    ]


def test_variation_env_enables_guarded_dependency():
    plan = build_plan(small_graph(), "a", variations=["_cuda"])
    assert "get-cuda" in ids(plan)
    assert plan.step("get-cuda").reason == "dependency of app _cuda via deps tags=get,cuda"
    assert plan.step("app").env["USE_CUDA"] == "True"


def test_user_env_enables_guarded_dependency_and_reaches_every_step():
    plan = build_plan(small_graph(), "a", env={"USE_CUDA": "yes", "FIXED": "user"})
    assert ids(plan).index("get-cuda") < ids(plan).index("app _cpu")
    # user env outranks the meta's env; it is handed down to dependencies too
    assert plan.step("app").env["FIXED"] == "user"
    assert plan.step("get-cuda").env["USE_CUDA"] == "yes"
    assert plan.step("get-cuda").new_env_keys == ["CM_CUDA_*"]


def test_env_layers_default_env_meta_env_and_variation_env():
    env = build_plan(small_graph(), "a").step("app").env
    assert (env["N"], env["FIXED"], env["USE_CPU"]) == ("1", "meta", "yes")
    assert build_plan(small_graph(), "a", env={"N": "4"}).step("app").env["N"] == "4"


def test_dependency_tags_select_dynamic_variations_of_the_dependency():
    plan = build_plan(small_graph(), "a")
    assert plan.step("get-lib _package.numpy").env["PKG"] == "numpy"
    assert plan.step("get-lib _package.pillow").variations == ["package.pillow"]


def test_shared_dependency_is_one_step_needed_by_several():
    step = build_plan(small_graph(), "a").step("detect-os")
    assert {c["step"] for c in step.needed_by} == {
        "app _cpu",
        "get-lib _package.numpy",
        "get-lib _package.pillow",
    }


def test_post_deps_run_after_their_caller():
    plan = build_plan(small_graph(), "a")
    assert plan.step("report").after == ["app _cpu"]
    assert ids(plan)[-1] == "report"


def test_undeclared_target_variation_is_a_usage_error():
    with pytest.raises(UsageError, match="app: variation 'rocm' is not declared"):
        build_plan(small_graph(), "a", variations=["rocm"])


def test_unknown_target_uid_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown target 'zzz'"):
        build_plan(small_graph(), "zzz")


def test_missing_and_ambiguous_entries_are_reported_with_what_matched():
    arts = [art("a", "app"), art("p1", "python-a"), art("p2", "python-b", sort=-1)]
    edges = [dep("a", "p1", "get,python", entry="e1"), dep("a", "p2", "get,python", entry="e1")]
    missing = [
        {
            "src": "a",
            "entry": "a#deps##1",
            "kind": "deps",
            "position": 1,
            "tags": ["get", "nothing"],
            "names": ["none"],
        }
    ]
    plan = build_plan(load_graph(arts, edges, missing), "a")
    # CM's order among candidates: meta `sort` first, then path
    assert plan.ambiguous[0]["matched"] == ["python-b", "python-a"]
    assert ids(plan) == ["python-b", "app"]
    assert plan.unresolved == [
        {
            "step": "app",
            "kind": "deps",
            "tags": ["get", "nothing"],
            "names": ["none"],
            "entry": "a#deps##1",
        }
    ]


def test_add_deps_recursive_selects_variations_deeper_down():
    arts = [
        art("a", "app", add_deps_recursive={"model": {"tags": "_fp16"}}),
        art("m", "mid"),
        art("x", "get-model", variations={"fp16": {}, "fp32": {}}),
    ]
    edges = [dep("a", "m", "mid"), dep("m", "x", "get,model", names=["model"])]
    plan = build_plan(load_graph(arts, edges), "a")
    assert "get-model _fp16" in ids(plan)


def test_entries_read_from_the_meta_take_env_tags_versions_and_references():
    arts = [
        art(
            "a",
            "app",
            env={"STUB": "tiny", "ROOT": "/opt", "BIN": "<<<ROOT>>>/bin"},
            deps=[
                {"tags": "get,model", "update_tags_from_env_with_prefix": {"_stub.": ["STUB"]}},
                {"tags": "get,tool", "version": "2.0"},
            ],
        ),
        art("m", "get-model", variations={"stub.#": {"env": {"MODEL": "#"}}}),
        art(
            "t",
            "get-tool",
            default_version="1.0",
            versions={"1.0": {"env": {"V": "1"}}, "2.0": {"env": {"V": "2"}}},
        ),
    ]
    # rows as the store query returns them: src, dst and entry id only
    edges = [
        {"src": "a", "dst": "m", "entry": "a#deps##0"},
        {"src": "a", "dst": "t", "entry": "a#deps##1"},
    ]
    plan = build_plan(load_graph(arts, edges), "a")
    assert plan.step("get-model").variations == ["stub.tiny"]  # _stub. + the env value
    assert plan.step("get-model").env["MODEL"] == "tiny"
    assert plan.step("app").env["BIN"] == "/opt/bin"
    assert (plan.step("get-tool").env["V"], plan.step("get-tool").version) == (
        "2",
        {"version": "2.0"},
    )


def openssl_like():
    """get <-> install through opposite guards on one key, as in cm4mlops."""
    arts = [art("g", "get-openssl", env={"REQ": "no"}), art("i", "install-openssl")]
    edges = [
        dep("g", "i", "install,openssl", kind="prehook_deps", enable_if_env={"REQ": ["yes"]}),
        dep("i", "g", "get,openssl", kind="post_deps", skip_if_env={"REQ": ["yes"]}),
    ]
    return load_graph(arts, edges)


def test_static_cycle_disappears_under_any_single_environment():
    graph = openssl_like()
    assert nx.find_cycle(graph)  # the static graph is cyclic
    for env in ({}, {"REQ": "yes"}, {"REQ": "no"}):
        assert "get-openssl" in ids(build_plan(graph, "g", env=env))
    assert ids(build_plan(graph, "g", env={"REQ": "yes"})) == ["install-openssl", "get-openssl"]


def test_cycle_left_by_guards_is_reported_as_a_path_of_aliases():
    env = {"get-openssl:REQ": "yes", "install-openssl:REQ": "no"}
    with pytest.raises(CycleError, match="get-openssl -> install-openssl -> get-openssl") as exc:
        build_plan(openssl_like(), "g", env=env)
    assert exc.value.cycle == ["get-openssl", "install-openssl", "get-openssl"]


def test_override_for_a_step_not_in_the_plan_is_a_warning():
    plan = build_plan(small_graph(), "a", env={"nowhere:X": "1"})
    assert plan.warnings == ["--env nowhere:...: no step 'nowhere' in this plan"]


def test_plan_renders_as_json_and_dot():
    plan = build_plan(small_graph(), "a")
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["steps"][0]["id"] == "detect-os" and "meta" not in data["steps"][0]
    assert '"app _cpu" -> "report" [label="post_deps"];' in plan.to_dot()


# --- the real cm4mlops corpus -------------------------------------------------------------

_CORPUS_ROWS: dict = {}


def corpus_rows(corpora, *, full=True):
    """cm4mlops through the real CM importer and resolver: (artifacts, edges, unresolved).

    ``full`` rows carry every DEPENDS_ON property, as records do; otherwise only ``src``,
    ``dst`` and ``entry``, as the store query returns them.
    """
    if corpora not in _CORPUS_ROWS:
        records = cm.read(corpora / "cm4mlops", "cm4mlops")
        arts = [n.props for n in records.nodes if n.label == "Artifact"]
        keys = ("uid", "alias", "kind", "tags", "variations", "source_uid")
        resolutions = resolve(records.dependencies, [{k: a[k] for k in keys} for a in arts])
        _CORPUS_ROWS[corpora] = (arts, resolutions)
    arts, resolutions = _CORPUS_ROWS[corpora]
    edges, unresolved = [], []
    for r in resolutions:
        d = r.dependency
        props = {"entry": r.entry}
        if full:
            props |= {f: getattr(d, f) for f in DEP_FIELDS}
        edges += [{"src": d.artifact_uid, "dst": m, **props} for m in r.matches]
        if not r.matches:
            unresolved.append({"src": d.artifact_uid, **props})
    return arts, edges, unresolved


def plan_corpus(corpora, alias, *, full=True, **kw):
    arts, edges, unresolved = corpus_rows(corpora, full=full)
    uid = next(a["uid"] for a in arts if a["alias"] == alias)
    return build_plan(load_graph(arts, edges, unresolved), uid, **kw)


def aliases(plan):
    """The scripts the plan surely runs (not those a guard decides at run time)."""
    return {s.alias for s in plan.steps if not s.at_run_time}


def sure(plan):
    return [s.id for s in plan.steps if not s.at_run_time]


def test_cuda_dependencies_appear_only_with_use_cuda(corpora):
    cpu = plan_corpus(corpora, "app-image-classification-onnx-py")
    gpu = plan_corpus(corpora, "app-image-classification-onnx-py", env={"USE_CUDA": "yes"})
    assert {"get-cuda", "get-cudnn"} <= aliases(gpu) - aliases(cpu)
    assert "get-generic-python-lib _onnxruntime" in ids(cpu)
    assert "get-generic-python-lib _onnxruntime_gpu" in ids(gpu)
    assert "get-generic-python-lib _onnxruntime" not in ids(gpu)  # skip_if_env USE_CUDA
    assert sure(cpu)[-1] == "app-image-classification-onnx-py _cpu"
    assert {
        "step": "app-image-classification-onnx-py _cpu",
        "kind": "deps",
        "tags": ["get", "cuda"],
        "why": "enable_if_env {'USE_CUDA': [True]}",
    } in cpu.skipped


def test_cuda_variation_sets_use_cuda_for_the_guards(corpora):
    plan = plan_corpus(corpora, "app-image-classification-onnx-py", variations=["cuda"])
    assert plan.steps[-1].variations == ["cuda"]
    assert "get-cuda" in aliases(plan)


def test_every_dependency_comes_before_its_dependant(corpora):
    plan = plan_corpus(corpora, "app-image-classification-onnx-py")
    position = {s.id: i for i, s in enumerate(plan.steps)}
    for step in plan.steps:
        assert all(position[before] < position[step.id] for before in step.after)
    posthook = [(s, c) for s in plan.steps for c in s.needed_by if c["kind"] == "posthook_deps"]
    extract, caller = next((s, c) for s, c in posthook if s.alias == "extract-file")
    assert position[extract.id] > position[caller["step"]]


def test_openssl_cycle_is_static_only_until_guards_make_it_real(corpora):
    arts, edges, unresolved = corpus_rows(corpora)
    graph = load_graph(arts, edges, unresolved)
    alias = {a["uid"]: a["alias"] for a in arts}
    get, install = (
        next(u for u, a in alias.items() if a == n) for n in ("get-openssl", "install-openssl")
    )
    assert nx.has_path(graph, get, install) and nx.has_path(graph, install, get)
    # get-openssl's own env sets CM_REQUIRE_INSTALL=no, which its customize.py may change:
    # install-openssl is planned as decided at run time
    plan = build_plan(graph, get)
    assert sure(plan) == ["get-openssl"]
    assert plan.step("install-openssl").at_run_time.startswith("get-openssl prehook_deps if")
    # one value everywhere turns one of the two guards off, whichever it is
    assert ids(build_plan(graph, get, env={"CM_REQUIRE_INSTALL": "yes"}))[-2:] == [
        "install-openssl",
        "get-openssl",
    ]
    assert "get-openssl" in ids(build_plan(graph, install))
    # install required at get-openssl (as its customize.py decides) but not at install-openssl:
    env = {"get-openssl:CM_REQUIRE_INSTALL": "yes", "install-openssl:CM_REQUIRE_INSTALL": "no"}
    with pytest.raises(CycleError, match="get-openssl -> install-openssl -> get-openssl"):
        build_plan(graph, get, env=env)


def test_largest_script_plans_without_cycles_and_reports_ambiguity(corpora):
    plan = plan_corpus(corpora, "app-mlperf-inference")
    assert len(plan.steps) > 30
    # get-llvm's post_deps get-compiler-flags skips get,compiler once llvm exported
    # CM_C_COMPILER_*: without that, get-llvm -> get-compiler-flags -> get-llvm is a cycle
    assert "get-compiler-flags" in {s.alias for s in plan.steps}
    compiler = [a for a in plan.ambiguous if a["tags"] == ["get", "compiler"]]
    assert compiler and compiler[0]["chosen"] == "get-llvm"  # lowest meta `sort`
    assert set(compiler[0]["matched"]) == {"get-llvm", "get-gcc", "get-cl"}


def test_entries_read_from_metas_plan_like_full_records(corpora):
    for alias in ("app-image-classification-onnx-py", "app-mlperf-inference"):
        full = plan_corpus(corpora, alias)
        lean = plan_corpus(corpora, alias, full=False)
        assert ids(lean) == ids(full)
        assert [s["tags"] for s in lean.skipped] == [s["tags"] for s in full.skipped]


# --- from the graph store, and the command line -------------------------------------------


@pytest.fixture
def cli_on(kg, monkeypatch):
    """Run ``ckg ARGS`` through the console entry point against the ``kg`` fixture's store."""
    monkeypatch.setattr("ckg.cli.plan.open_graph", lambda: contextlib.nullcontext(kg))

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["ckg", *args])
        try:
            main()
        except SystemExit as exc:
            return exc.code
        return 0

    return run


def test_plan_from_the_store_matches_the_pure_plan(kg, corpora, cli_on, capsys):
    kg.ingest(corpora / "cm4mlops", name="cm4mlops")
    target = "app-image-classification-onnx-py"
    stored = kg.plan(target, env={"USE_CUDA": "yes"})
    pure = plan_corpus(corpora, target, env={"USE_CUDA": "yes"})
    assert ids(stored) == ids(pure)
    assert [s["why"] for s in stored.skipped] == [s["why"] for s in pure.skipped]
    # the one-query subgraph of the largest script holds every entry the records hold
    largest = kg.plan("app-mlperf-inference")
    assert ids(largest) == ids(plan_corpus(corpora, "app-mlperf-inference"))
    assert largest.skipped == plan_corpus(corpora, "app-mlperf-inference").skipped
    # the same inputs again give the remembered plan, equal in every field
    assert kg.plan(target, env={"USE_CUDA": "yes"}) == stored
    assert kg.plan("app-mlperf-inference") == largest
    assert len(list((kg.home / "plans").glob("*.json"))) == 2
    cuda = stored.step("get-cuda")
    assert (cuda.path, cuda.kind, cuda.format) == ("script/get-cuda", "script", "cm")
    assert cuda.meta["alias"] == "get-cuda" and cuda.source_uid
    # tags name a target too, and `_name` tags in them are its variations
    by_tags = kg.plan("app,image-classification,onnx,python,_cuda")
    assert by_tags.steps[-1].variations == ["cuda"] and "get-cuda" in aliases(by_tags)

    assert cli_on("plan", target, "--env", "USE_CUDA=yes") == 0
    out = capsys.readouterr().out
    assert f"get-cuda _toolkit dependency of {target} _cpu via deps tags=get,cuda" in " ".join(
        out.split()
    )
    assert cli_on("plan", target, "--json") == 0
    assert json.loads(capsys.readouterr().out)["steps"][-1]["reason"] == "target"
    assert cli_on("plan", target, "--dot") == 0
    assert capsys.readouterr().out.startswith("digraph plan {")

    for args, message in [
        (["no-such-script"], "unknown target 'no-such-script'"),
        ([target, "--var", "tpu"], target + ": variation 'tpu' is not declared"),
        ([target, "--env", "USE_CUDA"], "--env expects NAME=VALUE"),
        ([target, "--json", "--dot"], "--json and --dot are exclusive"),
    ]:
        assert cli_on("plan", *args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "module",
    [core, graph, env_mod, variations, memo, guards, mlc_env, mlc_variations, versions],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_remembered_plans_are_keyed_by_every_module_of_the_planner_and_its_rule_book():
    from pathlib import Path

    folders = (Path(core.__file__).parent, Path(mlc.__file__).parent)
    modules = sorted(str(p) for folder in folders for p in folder.glob("*.py"))
    assert [path for path, _, _ in memo._planner_code()] == modules
