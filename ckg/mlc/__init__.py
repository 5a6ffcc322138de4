"""The one MLCFlow/CM rule book.

What MLCFlow's script automation (and CM's, where a :class:`~ckg.mlc.dialect.Dialect` says
how it differs) does with a script's meta between finding the script and running it, as pure
functions that the planner (:mod:`ckg.plan`) and the script engine (:mod:`ckg.run.scripts`)
both call: guards (:mod:`~ckg.mlc.guards`), env and dependency lists (:mod:`~ckg.mlc.env`),
variations (:mod:`~ckg.mlc.variations`) and versions (:mod:`~ckg.mlc.versions`).
"""

from ckg.mlc.dialect import CM, MLCFLOW, Dialect
from ckg.mlc.env import (
    LOCAL_ENV_NAMES,
    REF,
    MetaError,
    append_deps,
    fill_refs,
    hand_down,
    has_ref,
    merge,
    merge_tags_by_name,
    select_keys,
    split_tags,
    substitute,
    tags_from_env,
    update_deps,
)
from ckg.mlc.guards import (
    FALSE_WORDS,
    TRUE_WORDS,
    all_match,
    any_match,
    blocked_by,
    describe,
    is_false,
    is_true,
    skipped,
)
from ckg.mlc.variations import (
    choose,
    dynamic_name,
    fill_dynamic,
    groups,
    inherited_tags,
    variation_metas,
)
from ckg.mlc.versions import compare_versions

__all__ = [
    "CM",
    "FALSE_WORDS",
    "LOCAL_ENV_NAMES",
    "REF",
    "MLCFLOW",
    "TRUE_WORDS",
    "Dialect",
    "MetaError",
    "all_match",
    "any_match",
    "append_deps",
    "blocked_by",
    "choose",
    "compare_versions",
    "describe",
    "dynamic_name",
    "fill_dynamic",
    "fill_refs",
    "groups",
    "hand_down",
    "has_ref",
    "inherited_tags",
    "is_false",
    "is_true",
    "merge",
    "merge_tags_by_name",
    "select_keys",
    "skipped",
    "split_tags",
    "substitute",
    "tags_from_env",
    "update_deps",
    "variation_metas",
]
