"""MLC scripts, run with MLCFlow's semantics, and CM scripts with CM's.

Modules, from the outside in: :mod:`~ckg.run.scripts.invoke` (one invocation for the
runner: from the cache in this process, else in a worker), :mod:`~ckg.run.scripts.worker`
(the worker process), :mod:`~ckg.run.scripts.engine` (MLCFlow's ``run`` of one script and
its dependencies) and :mod:`~ckg.run.scripts.cm` (where CM's ``cm run script`` differs, and
CM's ``automation.cmind``), :mod:`~ckg.run.scripts.hooks` and
:mod:`~ckg.run.scripts.automation` (customize.py and its ``i['automation']``),
:mod:`~ckg.run.scripts.native` (``tmp-run.sh``), :mod:`~ckg.run.scripts.cache` (cache
entries), :mod:`~ckg.run.scripts.index` (scripts by tags) and
:mod:`~ckg.run.scripts.cm_rules` (CM's host and native-script rules). The rules for metas,
the planner's too, are :mod:`ckg.mlc`'s.
"""
