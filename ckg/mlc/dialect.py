"""What differs between MLCFlow's rules and Collective Mind's, as data.

CM (cmind 4.2.0 with cm4mlops' ``automation/script/module.py``) is the system MLCFlow
(mlcflow 1.3.8 with mlperf-automations' ``automation/script/module.py``) was forked from;
the rules of :mod:`ckg.mlc` are written once, MLCFlow's way, and take a :class:`Dialect`
where CM's answer differs. Each field names the functions it was read from.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    """One system's answers where MLCFlow's and CM's rules differ.

    Attributes
    ----------
    prefix : str
        The env prefix of the keys the automation itself sets (``MLC_`` / ``CM_``): the fake
        run key ``<prefix>TMP_FAKE_RUN`` of ``is_dep_tobe_skipped``, local env keys, ...
    ref_is_unset : bool
        Whether a value still holding an unresolved ``<<<KEY>>>`` counts as unset in a
        guard. MLCFlow's ``enable_or_skip_script`` says yes (``re.findall(r'<<<(.*?)>>>'``);
        CM's compares the text only.
    scalar_letters : bool
        Whether a scalar guard value is read letter by letter: CM's
        ``enable_or_skip_script`` iterates over ``meta[key]`` (``yes`` is ``y, e, s``);
        MLCFlow's makes a scalar a one-item list.
    sorted_new_tags : bool
        How ``update_dep_info`` appends the new tags of an ``add_deps`` update: CM's
        ``sorted(set(new) - set(old))`` order; MLCFlow's ``list(set(...))`` has no order,
        and is taken here in the order written.
    base_first : bool
        Where ``_add_base_variations`` puts a base variation: MLCFlow inserts it first (and
        walks a copy of the tags); CM appends it (walking the tags as they grow), and adds a
        dynamic base ``name.x`` only when no ``name.*`` tag is on yet.
    combination_bases : bool
        MLCFlow's ``_update_variation_tags_from_variations`` turns a combination ``a,b`` on
        when its parts are on, a dynamic part ``name.#`` matching any ``name.x``, and adds
        the combination's ``base``; CM needs the parts as written and adds no base.
    meta_default_variations : bool
        MLCFlow's ``_update_state_from_variations`` applies the meta's own
        ``default_variations`` before the variations'; CM only the variations'.
    text_versions : bool
        How ``compare_versions`` reads a part that is not a number: cmind's
        ``utils.compare_versions`` keeps it as text (and compares it with text);
        mlperf-automations' ``automation/utils.py`` takes its leading digits, else 0.
    list_tags : bool
        Whether ``update_tags_from_env*`` make a list value one tag per item (MLCFlow's
        ``_run_deps``); CM's appends its text (``str(value)``).
    entry_extensions : bool
        Whether a dependency entry's ``update_meta_if_env``, ``update_tags_if_env``,
        ``continue_on_error`` and ``<<<KEY>>>`` references in its tags count, and its
        ``update_tags_from_env`` reads the entry's own env first (MLCFlow's ``_run_deps``);
        CM's knows none of them and reads the caller's env.
    hides_per_entry : bool
        Whether ``_run_deps`` puts the caller's keys aside afresh for each entry (MLCFlow);
        CM's ``tmp_env`` is made once per list, so every key put aside so far comes back
        after each entry and ``force_env_keys`` may show one an earlier entry hid.
    """

    prefix: str = "MLC_"
    ref_is_unset: bool = True
    scalar_letters: bool = False
    sorted_new_tags: bool = False
    base_first: bool = True
    combination_bases: bool = True
    meta_default_variations: bool = True
    text_versions: bool = False
    list_tags: bool = True
    entry_extensions: bool = True
    hides_per_entry: bool = True


#: mlcflow 1.3.8 and mlperf-automations' script automation.
MLCFLOW = Dialect()
#: cmind 4.2.0 and cm4mlops' script automation (the cmx4mlops 1.0.1 wheel).
CM = Dialect(
    prefix="CM_",
    ref_is_unset=False,
    scalar_letters=True,
    sorted_new_tags=True,
    base_first=False,
    combination_bases=False,
    meta_default_variations=False,
    text_versions=True,
    list_tags=False,
    entry_extensions=False,
    hides_per_entry=False,
)
