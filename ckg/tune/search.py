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
- ``nsga2``: NSGA-II, for budgets of several hundred trials.
- ``gp``: a Gaussian process (needs PyTorch), for small spaces of numbers with costly trials.
- ``random``: each parameter drawn uniformly in turn, so that a value of ``model`` with few
  points is drawn as often as one with many; a baseline.
"""

import random
import warnings

from ckg.core.errors import UsageError
from ckg.tune.space import Param, holds

SAMPLERS = ("tpe", "nsga2", "gp", "random")


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
    directions : list of "min" or "max"
        One per objective, in the order values are told.
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
        directions: list[str],
        sampler: str = "tpe",
        seed: int | None = None,
    ):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.study = optuna.create_study(
            directions=["maximize" if d == "max" else "minimize" for d in directions],
            sampler=make_sampler(sampler, seed),
        )
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

        if values is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, values)

    def add(self, point: dict, values: list[float] | None) -> None:
        """A trial run before this study existed (a recorded Run, on ``--resume``)."""
        from optuna.trial import TrialState, create_trial

        known = {k: v for k, v in point.items() if k in self.distributions}
        self.study.add_trial(
            create_trial(
                params=known,
                distributions={k: self.distributions[k] for k in known},
                values=values,
                state=TrialState.FAIL if values is None else TrialState.COMPLETE,
            )
        )


def _suggest(trial, param: Param):
    if param.kind == "choice":
        return trial.suggest_categorical(param.name, param.values)
    if param.kind == "int":
        return trial.suggest_int(param.name, param.low, param.high, step=param.step)
    return trial.suggest_float(param.name, param.low, param.high, log=param.kind == "log")
