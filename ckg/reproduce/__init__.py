"""Reported against reproduced: what a run reproduces, and ``ckg reproduce PAPER``.

A run reproduces a published ``Result`` when it says so: ``ckg run TARGET --reproduces
RESULT`` (a Result uid, or a ``paper=...,task=...,dataset=...,metric=...,model=...`` spec),
or a ``reproduces:`` block in the artifact's meta (``ckg.yaml``, a CM/MLC ``_cm.yaml`` /
``meta.yaml``) that maps grid points to results::

    reproduces:
      - {paper: arXiv:1810.04805, task: Question Answering, dataset: SQuAD1.1,
         metric: F1, model: BERT-large, params: {model: bert-large}}

A run whose parameters (the grid point over the meta's defaults: ``params`` of a workflow,
``default_env`` of a script) match an entry's ``params`` reproduces the results the entry
names; an entry without ``params`` names what every run of the artifact reproduces. The
runner records ``(Run)-[:REPRODUCES]->(Result)`` when it records the run
(:class:`Reproduces`). The named queries ``paper-vs-reproduced`` and ``unreproduced-results``
compare through those edges.

Modules: :mod:`importers.reproduces` (declarations parsed, no graph),
:mod:`ckg.run.reproduces` (declarations resolved to Result uids before a run, with the
matching rules; the runner's :class:`~ckg.run.reproduces.Reproduces`) and
:mod:`~ckg.reproduce.paper` (``ckg reproduce PAPER``).
"""

from ckg.reproduce.paper import Reproduction, paper_key, reproduce
from ckg.run.reproduces import Reproduces, for_target, resolve
from importers.reproduces import FIELDS, check_block, parse_block, parse_declaration

__all__ = [
    "FIELDS",
    "Reproduces",
    "Reproduction",
    "check_block",
    "for_target",
    "paper_key",
    "parse_block",
    "parse_declaration",
    "reproduce",
    "resolve",
]

