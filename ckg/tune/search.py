"""An Optuna study over a space, driven by ask and tell: which point to run next.

The study holds only what the sampler needs; the trials themselves are Runs in the graph
(:mod:`ckg.tune.study`), and a study is rebuilt from them on ``--resume`` (:meth:`Search.add`).

Samplers (``--sampler``):

- ``tpe`` (default): Optuna's multi-objective TPE, multivariate and grouped. It models the
  good and the bad trials from the first ten on (random before), so it starts learning within
  budgets of a few dozen trials, where NSGA-II's first generation (50 random trials) would not
  be over yet; grouping fits a model per set of parameters that occur together, which is what
  conditional parameters make. On a space of few values it proposes points tried already:
  none runs twice (:func:`ckg.tune.study.ask_untried`).

What each trial measured is told to the sampler with a quantity (a time, a size, an energy)
as its logarithm (:data:`LINEAR_UNITS`).
- ``nsga2``: NSGA-II, for budgets of several hundred trials.
- ``gp``: a Gaussian process (needs PyTorch), for small spaces of numbers with costly trials.
- ``random``: each parameter drawn uniformly in turn, so that a value of ``model`` with few
  points is drawn as often as one with many; a baseline.
"""

import math
import random
import warnings

from ckg.core import metrics
from ckg.core.errors import UsageError
from ckg.tune.space import Param, holds

SAMPLERS = ("tpe", "nsga2", "gp", "random")
#: Units of the objectives told to the sampler as measured: shares and scores, bounded, read
#: on a linear scale. Any other (a latency in s, a memory in B, an energy in J, a rate) is
#: told as its logarithm: such quantities span orders of magnitude over a space (the
#: example's latencies 0.3 us to 210 us), and the sampler picks the trials it models as good
#: by their front and, within it, their hypervolume, on which a linear scale puts every point
#: under a few microseconds at the same place: TPE then models the slowest, most accurate
#: points and rarely the fastest. It is how ``ckg pareto`` plots such an axis too.
LINEAR_UNITS = ("%", "")


def make_sampler(name: str, seed: int | None):
    """The Optuna sampler ``--sampler`` names, seeded.

    Raises
    ------
    UsageError
        An unknown name (:func:`check_sampler`); ``gp`` without PyTorch installed.
    """
    import optuna

    check_sampler(name)
    if name == "tpe":
        with warnings.catch_warnings():  # multivariate and group are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # 64 candidates per proposal rather than 24: on bench/tune_bench.py, 95% of the
            # grid's hypervolume after fewer trials, for milliseconds per trial.
            return optuna.samplers.TPESampler(
                multivariate=True, group=True, seed=seed, n_ei_candidates=64
            )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        from importlib.util import find_spec

        if find_spec("torch") is None:  # no extra of ckg brings it: it is large, and optional
            raise UsageError("--sampler gp needs PyTorch, not installed: pip install torch")
        return optuna.samplers.GPSampler(seed=seed)
    raise AssertionError(name)  # check_sampler let it through


def check_sampler(name: str) -> None:
    """Refuse a ``--sampler`` that is not one of :data:`SAMPLERS`, naming them.

    >>> check_sampler("cmaes")
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --sampler 'cmaes' is not one of tpe, nsga2, gp, random
    """
    if name not in SAMPLERS:
        raise UsageError(f"--sampler {name!r} is not one of {', '.join(SAMPLERS)}")


def distribution(param: Param):
    """The Optuna distribution of ``param``."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "choice":
        return CategoricalDistribution(param.values)
    if param.kind == "int":
        return IntDistribution(param.low, param.high, step=param.step)
    return FloatDistribution(param.low, param.high, log=param.kind == "log")


class Search:
    """Ask for points, tell what they measured.

    Parameters
    ----------
    space : tuple of Param
        What is searched (:func:`ckg.tune.space.parse_space`).
    objectives : list of (str, "min" or "max")
        Each objective's metric and direction, in the order values are told; a metric of
        the registry whose unit is not one of :data:`LINEAR_UNITS` is told to the sampler as
        its logarithm.
    sampler : str
        One of :data:`SAMPLERS`.
    seed : int, optional
        The sampler's seed: the same seed, space and results give the same points. It also
        seeds ``rng``, which draws among the points :func:`ckg.tune.space.nearest` finds as
        close.
    """

    def __init__(
        self,
        space: tuple[Param, ...],
        objectives: list[tuple[str, str]],
        sampler: str = "tpe",
        seed: int | None = None,
    ):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.study = optuna.create_study(
            directions=["maximize" if d == "max" else "minimize" for _, d in objectives],
            sampler=make_sampler(sampler, seed),
        )
        self.logs = [_unit(name) not in LINEAR_UNITS for name, _ in objectives]
        self.distributions = {p.name: distribution(p) for p in space}
        self.rng = random.Random(seed)

    def ask(self) -> tuple[int, dict]:
        """A new trial: its Optuna number and its point, with only the parameters whose
        condition holds."""
        trial = self.study.ask()
        point: dict = {}
        for param in self.space:
            if holds(param, point):
                point[param.name] = _suggest(trial, param)
        return trial.number, point

    def ask_for(self, point: dict) -> tuple[int, dict]:
        """A new trial of ``point`` (a point of the space) rather than one the sampler
        proposes: its Optuna number and the point."""
        self.study.enqueue_trial(point)
        number, asked = self.ask()
        assert asked == point, (asked, point)  # Optuna took every value enqueued
        return number, asked

    def tell(self, number: int, values: list[float] | None) -> None:
        """What trial ``number`` measured, one value per objective; None when it failed."""
        from optuna.trial import TrialState

        told = as_told(values, self.logs)
        if told is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, told)

    def add(self, point: dict, values: list[float] | None) -> None:
        """A trial run before this study existed (a recorded Run, on ``--resume``)."""
        from optuna.trial import TrialState, create_trial

        known = {k: v for k, v in point.items() if k in self.distributions}
        told = as_told(values, self.logs)
        self.study.add_trial(
            create_trial(
                params=known,
                distributions={k: self.distributions[k] for k in known},
                values=told,
                state=TrialState.FAIL if told is None else TrialState.COMPLETE,
            )
        )


def as_told(values: list[float] | None, logs: list[bool]) -> list[float] | None:
    """``values`` as the sampler is told them: those ``logs`` marks as their logarithm; None
    (a failed trial) where they are None or one of those is not positive, having none.

    >>> as_told([90.0, 1e-6], [False, True])
    [90.0, -6.0]
    >>> as_told([90.0, 0.0], [False, True]) is None
    True
    """
    if values is None or any(log and v <= 0 for v, log in zip(values, logs, strict=True)):
        return None
    return [math.log10(v) if log else v for v, log in zip(values, logs, strict=True)]


def _unit(name: str) -> str:
    """The registry's unit of metric ``name``; "" for one it does not list."""
    metric = metrics.get(name)
    return metric.unit if metric else ""


def _suggest(trial, param: Param):
    if param.kind == "choice":
        return trial.suggest_categorical(param.name, param.values)
    if param.kind == "int":
        return trial.suggest_int(param.name, param.low, param.high, step=param.step)
    return trial.suggest_float(param.name, param.low, param.high, log=param.kind == "log")
