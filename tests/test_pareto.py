"""ckg.pareto against brute-force O(n^2) references written here, and against moocore."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckg import pareto
from ckg.core.errors import InvalidInput, UsageError

# --- brute-force references -----------------------------------------------------------------


def _oriented(rows, directions):
    return [[v if d == "min" else -v for v, d in zip(row, directions, strict=True)] for row in rows]


def _dominates(p, q):
    return all(a <= b for a, b in zip(p, q, strict=True)) and list(p) != list(q)


def ref_ranks(rows, directions):
    """Peel fronts: a front is every remaining point no remaining point dominates."""
    pts = _oriented(rows, directions)
    rest = [i for i, p in enumerate(pts) if not any(math.isnan(v) for v in p)]
    ranks, front = [0] * len(pts), 0
    while rest:
        front += 1
        on = [i for i in rest if not any(_dominates(pts[j], pts[i]) for j in rest)]
        for i in on:
            ranks[i] = front
        rest = [i for i in rest if i not in on]
    return ranks


def _scaled_sums(pts, idx):
    total = [0.0] * len(idx)
    for j in range(len(pts[idx[0]])):
        column = [pts[i][j] for i in idx]
        finite = [v for v in column if math.isfinite(v)]
        if not finite:
            continue
        lo, hi = min(finite), max(finite)
        for k, v in enumerate(column):
            total[k] += (min(max(v, lo), hi) - lo) / (hi - lo) if hi > lo else 0.0
    return total


def _covers(p, q, eps):
    return p != q and all(a <= b + e for a, b, e in zip(p, q, eps, strict=True))


def ref_margin_ranks(rows, directions, eps):
    """The documented greedy: best first by (dominating, covering points, scaled sum, values)."""
    pts = _oriented(rows, directions)
    rest = [i for i, p in enumerate(pts) if not any(math.isnan(v) for v in p)]
    ranks, front = [0] * len(pts), 0
    while rest:
        front += 1
        sums = dict(zip(rest, _scaled_sums(pts, rest), strict=True))
        doms = {i: sum(_dominates(pts[j], pts[i]) for j in rest) for i in rest}
        count = {i: sum(_covers(pts[j], pts[i], eps) for j in rest) for i in rest}
        order = sorted(rest, key=lambda i: (doms[i], count[i], sums[i], *pts[i]))
        taken = []
        for i in order:
            if not any(_covers(pts[a], pts[i], eps) for a in taken):
                taken.append(i)
        for i in taken:
            ranks[i] = front
        rest = [i for i in rest if i not in taken]
    return ranks


# --- strategies ------------------------------------------------------------------------------

VALUES = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, 0.5, math.inf, -math.inf, math.nan]),
    st.floats(-10, 10, allow_nan=False, width=16),
)


@st.composite
def problems(draw, max_rows=40, dims=(1, 5)):
    d = draw(st.integers(*dims))
    n = draw(st.integers(0, max_rows))
    rows = draw(st.lists(st.lists(VALUES, min_size=d, max_size=d), min_size=n, max_size=n))
    # Duplicate some rows so that exact copies are common.
    if rows:
        extra = draw(st.lists(st.integers(0, len(rows) - 1), max_size=5))
        rows += [list(rows[i]) for i in extra]
    directions = draw(st.lists(st.sampled_from(["min", "max"]), min_size=d, max_size=d))
    return rows, directions


def _array(rows, d):
    return np.array(rows, dtype=float).reshape(len(rows), d)


SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(problems())
def test_ranks_match_brute_force(problem):
    rows, directions = problem
    x = _array(rows, len(directions))
    expected = ref_ranks(rows, directions)
    assert pareto.pareto_ranks(x, directions).tolist() == expected
    assert pareto.nondominated(x, directions).tolist() == [r == 1 for r in expected]


@SETTINGS
@given(problems(max_rows=25), st.data())
def test_margin_ranks_match_documented_greedy(problem, data):
    rows, directions = problem
    d = len(directions)
    eps = data.draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 2.0]), min_size=d, max_size=d))
    x = _array(rows, d)
    expected = ref_margin_ranks(rows, directions, eps)
    assert pareto.pareto_ranks(x, directions, margins=eps).tolist() == expected
    assert pareto.nondominated(x, directions, margins=eps).tolist() == [r == 1 for r in expected]


@SETTINGS
@given(problems(max_rows=25), st.data())
def test_margins_only_shrink_the_front_and_every_left_out_point_is_covered(problem, data):
    rows, directions = problem
    d = len(directions)
    eps = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 3.0]), min_size=d, max_size=d)))
    x = _array(rows, d)
    exact = pareto.nondominated(x, directions)
    loose = pareto.nondominated(x, directions, margins=eps)
    assert not (loose & ~exact).any()
    pts = np.array(_oriented(rows, directions)).reshape(len(rows), d)
    for i in np.flatnonzero(exact & ~loose):
        assert any(
            (pts[j] <= pts[i] + eps).all() and (pts[j] != pts[i]).any()
            for j in np.flatnonzero(loose)
        )


def test_zero_margins_are_the_exact_front():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, (300, 3)).astype(float)
    assert (pareto.pareto_ranks(x, margins=0) == pareto.pareto_ranks(x)).all()
    assert (pareto.pareto_ranks(x, margins=[0, 0, 0.0]) == pareto.pareto_ranks(x)).all()


def test_duplicates_share_their_front():
    x = [[1, 1], [1, 1], [2, 2], [2, 2], [0, 3]]
    assert pareto.pareto_ranks(x).tolist() == [1, 1, 2, 2, 1]


def test_nan_rows_are_left_out_and_infinities_compare():
    x = [[1, math.nan], [math.inf, 0], [0, math.inf], [-math.inf, math.inf], [5, 5]]
    assert pareto.pareto_ranks(x).tolist() == [0, 1, 2, 1, 1]


def test_maximised_objective_flips_the_order():
    x = [[0.9, 10.0], [0.8, 5.0], [0.7, 6.0]]
    assert pareto.nondominated(x, ["max", "min"]).tolist() == [True, True, False]
    assert pareto.nondominated(x, "max").tolist() == [True, False, False]


# --- the fast paths at sizes the property tests do not reach ---------------------------------


def _moocore():
    return pytest.importorskip("moocore")


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("kind", ["uniform", "anti", "ties", "front"])
def test_large_inputs_match_moocore(d, kind):
    moocore = _moocore()
    rng = np.random.default_rng(d)
    n = 6000 if d < 4 else 2500
    if kind == "uniform":
        x = rng.random((n, d))
    elif kind == "anti":
        x = rng.dirichlet(np.ones(d), n) + rng.normal(0, 1e-3, (n, 1))
    elif kind == "ties":
        x = rng.integers(0, 12, (n, d)).astype(float)
    else:  # on the unit sphere: no point dominates another
        x = np.abs(rng.normal(size=(n, d)))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    expected = moocore.is_nondominated(x, keep_weakly=True)
    assert (pareto.nondominated(x) == expected).all()
    assert (pareto.pareto_ranks(x) == moocore.pareto_rank(x) + 1).all()  # moocore counts from 0


def test_prefilters_keep_exact_answers_on_small_inputs(monkeypatch):
    monkeypatch.setattr(pareto.sets, "_PREFILTER_MIN", 8)
    monkeypatch.setattr(pareto.sets, "_BLOCK", 4)
    rng = np.random.default_rng(7)
    for d in (2, 3, 4):
        for _ in range(40):
            x = rng.integers(0, 5, (rng.integers(1, 60), d)).astype(float)
            x[rng.random(x.shape) < 0.05] = math.inf
            rows = x.tolist()
            assert pareto.pareto_ranks(x).tolist() == ref_ranks(rows, ["min"] * d)


@pytest.fixture
def compiled_for_all():
    """The compiled kernels (ckg.pareto.kernels) for inputs of any size."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto.sets, "_COMPILED_MIN", 1)
        yield mp


@SETTINGS
@given(problems(max_rows=60, dims=(2, 8)), st.booleans())
def test_compiled_kernels_match_brute_force(problem, prefilter):
    # The fixture's patch cannot wrap a hypothesis test, so the context is opened here.
    rows, directions = problem
    x = _array(rows, len(directions))
    expected = ref_ranks(rows, directions)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pareto.sets, "_COMPILED_MIN", 1)
        if prefilter:
            mp.setattr(pareto.sets, "_PREFILTER_MIN", 8)
        assert pareto.pareto_ranks(x, directions).tolist() == expected
        assert pareto.nondominated(x, directions).tolist() == [r == 1 for r in expected]


def _staircase_rows(pattern: str, n: int) -> list[list[float]]:
    """Three objectives in first-objective order whose (second, third) values enter the
    staircase of front 2 at its start, its end, alternately, or in its middle."""
    t = np.arange(n, dtype=float)
    if pattern == "start":
        y, z = -t, t
    elif pattern == "end":
        y, z = t, -t
    elif pattern == "alternate":
        y = np.where(t % 2 == 0, -t, t)
        z = -y
    else:
        y = np.where(t % 2 == 0, t, 2 * n - t)
        z = -y
    rows = np.column_stack((t, y, z)).tolist()
    return rows + [[-1.0, -3.0 * n, -3.0 * n]]  # dominates every other row


@pytest.mark.parametrize("pattern", ["start", "end", "alternate", "middle"])
def test_three_objective_staircases_grow_from_either_end(compiled_for_all, pattern):
    rows = _staircase_rows(pattern, 300)
    expected = ref_ranks(rows, ["min"] * 3)
    assert max(expected) == 2
    assert pareto.pareto_ranks(np.array(rows)).tolist() == expected


# --- hypervolume ------------------------------------------------------------------------------


def test_hypervolume_two_objectives_exact():
    assert pareto.hypervolume([[1, 3], [2, 2], [3, 1], [3, 3]], [4, 4]) == 6.0
    assert pareto.hypervolume([[5, 5]], [4, 4]) == 0.0
    assert pareto.hypervolume([[0.9, 10.0], [math.nan, 1.0]], [0.5, 20.0], ["max", "min"]) == 4.0


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_hypervolume_matches_moocore(d):
    moocore = _moocore()
    rng = np.random.default_rng(d)
    x = rng.random((40 if d < 5 else 15, d))
    ref = np.full(d, 1.1)
    assert pareto.hypervolume(x, ref) == pytest.approx(moocore.hypervolume(x, ref=ref), rel=1e-12)


def test_hypervolume_rejects_a_reference_of_the_wrong_length():
    with pytest.raises(InvalidInput, match="reference point must have 2 numbers"):
        pareto.hypervolume([[1, 2]], [3])


# --- bad input -------------------------------------------------------------------------------


def test_bad_direction_and_margin_are_named():
    with pytest.raises(InvalidInput, match="direction must be 'min' or 'max', got 'up'"):
        pareto.nondominated([[1, 2]], ["min", "up"])
    with pytest.raises(InvalidInput, match="margins must be finite and >= 0"):
        pareto.nondominated([[1, 2]], margins=[-1, 0])
    with pytest.raises(InvalidInput, match="3 directions given for 2 objectives"):
        pareto.nondominated([[1, 2]], ["min", "min", "max"])


# --- objectives and tables -------------------------------------------------------------------


def test_parse_objectives_takes_directions_from_the_registry():
    objs = pareto.parse_objectives("Top-1 Accuracy, latency:max")
    assert [(o.name, o.direction) for o in objs] == [("Top-1 Accuracy", "max"), ("latency", "max")]


def test_parse_objectives_errors_name_the_problem():
    with pytest.raises(UsageError, match="no direction known for metric 'wobble'"):
        pareto.parse_objectives("wobble,latency")
    with pytest.raises(UsageError, match="direction must be min or max"):
        pareto.parse_objectives("latency:least")
    with pytest.raises(UsageError, match="objective named twice"):
        pareto.parse_objectives("latency,latency:max")


def _runs():
    return pd.DataFrame(
        {
            "config": ["a", "b", "c", "d", "e"],
            "accuracy": [76.0, 75.0, 70.0, None, "74.5"],
            "latency": [0.030, 0.010, 0.020, 0.001, 0.040],
        }
    )


def test_front_table_ranks_sorts_and_counts_left_out_rows():
    table = pareto.front_table(_runs(), ["accuracy", "latency"])
    assert table["config"].tolist() == ["a", "b", "e", "c"]
    assert table["front_rank"].tolist() == [1, 1, 2, 2]
    assert table.attrs["left_out"] == 1
    assert table.attrs["objectives"] == ["accuracy:max", "latency:min"]
    assert table["accuracy"].dtype.kind == "f"


def test_front_table_matches_canonical_metric_names_and_keeps_fronts():
    runs = _runs().rename(columns={"accuracy": "top1_accuracy"})
    table = pareto.front_table(runs, "Top-1 Accuracy,latency", fronts=1)
    assert table["config"].tolist() == ["a", "b"]
    assert table.attrs["columns"] == {"Top-1 Accuracy": "top1_accuracy", "latency": "latency"}


def test_front_table_margins_drop_a_point_within_the_margin():
    runs = pd.DataFrame({"config": ["slow", "fast"], "accuracy": [76.0, 75.8], "latency": [10, 5]})
    exact = pareto.front_table(runs, "accuracy,latency")
    loose = pareto.front_table(runs, "accuracy,latency", margins={"accuracy": 0.5})
    assert exact["front_rank"].tolist() == [1, 1]
    assert loose[loose["front_rank"] == 1]["config"].tolist() == ["fast"]


def test_front_table_unknown_objective_names_the_metrics_present():
    with pytest.raises(
        InvalidInput, match="'energy' is not in the results; metrics present: latency"
    ):
        pareto.front_table(_runs(), "accuracy,energy:min")
    with pytest.raises(UsageError, match="margin for 'power', which is not an objective"):
        pareto.front_table(_runs(), "accuracy,latency", margins={"power": 1.0})
