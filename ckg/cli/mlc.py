"""MLCFlow's command line in ``ckg run`` and ``ckg plan``, and the line that names a choice.

``mlcr TAGS --env.KEY=VALUE --adr.NAME.tags=... --version_min=3.8 -j --quiet`` works as
``ckg run TAGS ...`` with the same words: :func:`parse_mlc` reads them as MLCFlow's
``convert_args_to_dictionary`` does (mlcflow 1.3.8), :func:`mlc_call` sorts them into what
ckg's run takes, and :func:`choose_target` picks the artifact as MLCFlow would and says on
stderr which it took and from which source when several matched.
"""

import sys
from dataclasses import dataclass, field

from ckg.core.errors import UsageError

#: The click settings that leave MLCFlow's flags (unknown to ckg) to :func:`mlc_call`.
MLC_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}
#: MLCFlow's short flags and the names they stand for (its ``log_flag_aliases``).
SHORT = {"v": "verbose", "s": "silent", "j": "json"}
#: Values that switch a flag off (MLCFlow's ``is_false``).
FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(slots=True)
class MlcCall:
    """What an MLCFlow command line asks of ``ckg run``: the target, its env, the script
    inputs (``add_deps_recursive``, ``version_min``, ``input_mapping`` keys, ...) and the
    flags that change how ckg itself behaves."""

    target: str = ""
    env: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    quiet: bool = False
    json: bool = False
    verbose: bool = False
    new: bool = False


def parse_mlc(tokens: list[str]) -> tuple[list[str], dict]:
    """Positional words and MLCFlow's dictionary of flags, as ``mlcr`` reads them.

    ``--a=b`` is ``{"a": "b"}`` (``-`` in the name read as ``_``), ``--a.b.c=d`` nests
    (``--env.KEY=V``, ``--adr.NAME.tags=T``), ``--a,=x,y`` is a list, ``--flag`` is True and
    ``-xy`` sets each letter (``-j``: json, ``-v``: verbose, ``-s``: silent).

    >>> parse_mlc(["detect,os", "--env.MLC_X=1", "--adr.cc.tags=gcc", "-j", "--version-min=3.8"])
    (['detect,os'], {'env': {'MLC_X': '1'}, 'adr': {'cc': {'tags': 'gcc'}}, 'json': True, \
'version_min': '3.8'})
    >>> parse_mlc(["--skip_cache", "--list,=a,b"])
    ([], {'skip_cache': True, 'list': ['a', 'b']})
    """
    words: list[str] = []
    flags: dict = {}
    for token in tokens:
        if not token.startswith("-") or token == "-":
            words.append(token)
            continue
        name, sep, value = token.lstrip("-").partition("=")
        if not token.startswith("--"):
            if sep:
                raise UsageError(f"{token!r}: a short flag takes no value; write --NAME=VALUE")
            for letter in name:
                flags[SHORT.get(letter, letter)] = True
            continue
        if "." not in name:
            name = name.replace("-", "_")
        if not name:
            raise UsageError(f"{token!r} names no flag")
        if not sep and "." in name:
            raise UsageError(f"{token!r} expects a value: {token}=VALUE")
        if not sep:
            flags[SHORT.get(name, name)] = True
        elif name.endswith(","):
            flags[name[:-1]] = value.split(",")
        elif "." in name:
            *path, last = name.split(".")
            here = flags
            for part in path:
                if not isinstance(here.get(part), dict):
                    here[part] = {}
                here = here[part]
            here[last] = value
        else:
            flags[name] = value
    return words, flags


def mlc_call(tokens: list[str], env: dict | None = None, inputs: dict | None = None) -> MlcCall:
    """An :class:`MlcCall` from the words after ``ckg run`` that ckg's own options left
    (the target among them), over the ``env`` and ``inputs`` of ckg's ``--env K=V`` and
    ``--input K=V``: an MLCFlow flag naming the same key wins, as the later one.

    >>> c = mlc_call(["--tags=get,python3", "--env.A=1", "--adr.python.version_min=3.9",
    ...               "--version_min=3.8", "--quiet", "-j", "--new"])
    >>> c.target, c.env, c.quiet, c.json, c.new
    ('get,python3', {'A': '1'}, True, True, True)
    >>> c.inputs
    {'add_deps_recursive': {'python': {'version_min': '3.9'}}, 'version_min': '3.8', 'new': True}
    """
    words, flags = parse_mlc(tokens)
    tags = flags.pop("tags", None)
    if isinstance(tags, list):
        tags = ",".join(tags)
    if tags is True:
        raise UsageError("--tags expects --tags=TAG1,TAG2")
    if len(words) > 1 or (words and tags):
        extra = words[1:] if not tags else words
        raise UsageError(
            f"unexpected argument {extra[0]!r}: give the target once, and each flag as "
            "--NAME=VALUE (MLCFlow reads --path /x as --path alone)"
        )
    call = MlcCall(target=tags or (words[0] if words else ""), inputs=dict(inputs or {}))
    if not call.target:
        raise UsageError("name the target: TAGS, an alias or a uid (or --tags=TAGS)")
    given = flags.pop("env", {})
    if not isinstance(given, dict):
        raise UsageError("--env. expects --env.KEY=VALUE")
    call.env = {**(env or {}), **dict(_flat(given))}
    adr = {}
    for key in ("adr", "add_deps_recursive"):
        value = flags.pop(key, {})
        if not isinstance(value, dict):
            raise UsageError(f"--{key} expects --{key}.NAME.KEY=VALUE (--{key}.python.tags=...)")
        _merge(adr, value)
    if adr:
        call.inputs["add_deps_recursive"] = adr
    call.quiet = _on(flags.pop("quiet", False))
    call.json = _on(flags.pop("json", False))
    call.verbose = _on(flags.pop("verbose", False))
    flags.pop("silent", None)  # ckg prints no log unless asked: silent is its default
    if "new" in flags:  # for the engine: the target runs into a new cache entry
        call.new = flags["new"] = _on(flags["new"])
    call.inputs.update(flags)
    return call


def quiet_mode(call: MlcCall) -> bool:
    """MLCFlow's quiet mode: ``--quiet``, ``MLC_QUIET`` (or CM's ``CM_QUIET``) in the run's
    env, or no terminal to ask on."""
    in_env = any(_on(call.env.get(k, "")) for k in ("MLC_QUIET", "CM_QUIET"))
    return call.quiet or in_env or not sys.stdin.isatty()


def choose_target(
    kg,
    target: str,
    *,
    source: str | None = "",
    quiet: bool = True,
    use_cache: bool = True,
    verb: str = "running",
) -> str:
    """The target as ckg's run and plan take it, with the artifact MLCFlow would choose
    named by uid; one line on stderr says which, from which source, when several matched.

    Raises
    ------
    UsageError
        As :func:`ckg.graph.lookup.select`: nothing matches, or several where MLCFlow would ask.
    """
    from ckg.graph.lookup import chosen

    selection = kg.select(target, source=source or "", quiet=quiet, use_cache=use_cache)
    if selection.choice is not None and (selection.choice.others or source):
        say_choice(target, chosen(selection.choice), verb)
    return ",".join([selection.uid, *("_" + v for v in selection.variations)])


def say_choice(target: str, choice: dict | None, verb: str) -> None:
    """One line on stderr: which artifact ``target`` chose (``choice`` as
    :func:`ckg.graph.lookup.chosen` gives it), from which source, and what else matched."""
    from ckg.graph.lookup import listing

    if not choice:
        return
    c = choice["chosen"]
    where = c.get("source_name") or c.get("source") or "?"
    line = f"ckg: {target}: {verb} {c.get('alias') or c['uid']} ({c['uid']}) from {where}"
    if choice["also_matched"]:
        line += f"; also matched: {listing(choice['also_matched'])}; --source NAME takes another"
    print(line, file=sys.stderr, flush=True)


def print_logs(report) -> None:
    """``-v``: each run's log on stderr (MLCFlow's debug log), before the table."""
    from pathlib import Path

    from ckg.run.runner import LOG_NAME

    for run in report.runs:
        log = Path(run.workdir) / LOG_NAME
        if log.is_file():
            print(f"ckg: log of run {run.uid} ({log}):", file=sys.stderr)
            sys.stderr.write(log.read_text(errors="replace"))
    sys.stderr.flush()


def _on(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() not in FALSE)


def _flat(env: dict, prefix: str = ""):
    """``--env.A.B=1`` nests as ``{"A": {"B": "1"}}``; an env key is ``A.B``."""
    for key, value in env.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", "yes" if value is True else value


def _merge(into: dict, more: dict) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
