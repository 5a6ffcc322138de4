"""Run artifacts on this host, measure them, and record every figure in the graph.

Modules, from the outside in: :mod:`~ckg.run.runner` (one command: plans, grid, the executor
of each point), :mod:`~ckg.run.preflight` (the checks before a step runs),
:mod:`~ckg.run.points` (a workflow's or notebook's grid point: steps executed, measured,
cached, recorded), :mod:`~ckg.run.script_point` (a script target's grid point),
:mod:`~ckg.run.checkouts` (where each step's code lies, and its provenance),
:mod:`~ckg.run.steps` (a workflow step's command and environment, ``tmp-run-env.out``),
:mod:`~ckg.run.scripts` (MLC and CM scripts with MLCFlow's semantics),
:mod:`~ckg.run.workflow` (``--grid`` and ``--env`` values), :mod:`~ckg.run.notebook` (a Jupyter
notebook executed with its parameters injected), :mod:`~ckg.run.container` (``docker run``
commands, ``--in-container``), :mod:`~ckg.run.execute` (one subprocess in
its own process group, timeout, CPU time, peak memory), :mod:`~ckg.run.measure` (statistics,
energy meters, result files), :mod:`~ckg.run.platform` (the host's fingerprint),
:mod:`~ckg.run.record` (Run and Measurement records), :mod:`~ckg.run.reproduces`
(the published results a run reproduces), :mod:`~ckg.run.journal` (on disk
before the graph; recovery) and :mod:`~ckg.run.trust` (trusted sources, step cache).

``run``, ``Options``, ``Report`` and ``RunResult`` are imported on first use, so that the
CLI can parse ``--grid`` and ``--env`` through :mod:`~ckg.run.workflow` without loading the
runner.
"""

_RUNNER_NAMES = ("Options", "Report", "RunResult", "run")
__all__ = list(_RUNNER_NAMES)


def __getattr__(name: str):
    if name in _RUNNER_NAMES:
        from ckg.run import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'ckg.run' has no attribute {name!r}")
