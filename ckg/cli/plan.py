"""``ckg plan``: the ordered steps that run a target, and why each is there."""

import json
import shutil
import sys
import textwrap

import typer

from ckg.cli.app import app, open_graph
from ckg.cli.mlc import MLC_FLAGS, choose_target, mlc_call, quiet_mode
from ckg.core.errors import UsageError


@app.command("plan", context_settings=MLC_FLAGS)
def plan(
    ctx: typer.Context,
    target: str = typer.Argument(
        None, help="Artifact uid, alias or tags (_name: variation; or --tags=...)."
    ),
    var: list[str] = typer.Option(None, "--var", help="Variation of the target, repeatable."),
    env: list[str] = typer.Option(None, "--env", help="K=V (or ALIAS:K=V), repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    dot: bool = typer.Option(False, "--dot", help="Print the plan as Graphviz dot."),
    source: str = typer.Option(
        None, "--source", help="Where several artifacts match: the one of this source."
    ),
) -> None:
    """Print the steps that run TARGET in order, and why each step is there.

    mlcr's flags work as in ckg run (--tags=, -j, --env.KEY=V, --adr.NAME.tags=, --quiet).

    Example: ckg plan app-image-classification-onnx-py --env USE_CUDA=yes

    Example: ckg plan --tags=get,python3 --env.MLC_X=1 --adr.python.tags=_shared -j
    """
    from ckg.run.workflow import parse_env

    call = mlc_call([*([target] if target else []), *ctx.args], parse_env(env))
    as_json = as_json or call.json
    if as_json and dot:
        raise UsageError("--json and --dot are exclusive; choose one")
    with open_graph() as kg:
        target = choose_target(
            kg, call.target, source=source, verb="planning", quiet=quiet_mode(call)
        )
        adr = call.inputs.pop("add_deps_recursive", {})
        result = kg.plan(target, variations=tuple(var or ()), env=call.env, adr=adr)
        # an image or Dockerfile is run by a container engine: what ckg would run
        engine = kg.container_commands(result)
    unplanned = [k for k in call.inputs if k != "new"]
    unplanned += [f"adr.{n}.{k}" for n, v in adr.items() for k in v if k != "tags"]
    if unplanned:  # the planner reads env, variations and adr's tags; the engine the rest
        print(
            f"ckg: plan: {', '.join('--' + k for k in unplanned)}: read by the script when "
            "it runs (ckg run), not by the plan",
            file=sys.stderr,
        )
    if as_json:
        data = result.to_dict()
        print(
            json.dumps(
                {**data, **({"docker": engine} if engine else {})}, indent=2, ensure_ascii=False
            )
        )
    elif dot:
        print(result.to_dot())
    else:
        print("\n".join(render(result, shutil.get_terminal_size().columns, engine)))


def render(result, width: int | None = None, engine: dict | None = None) -> list[str]:
    """The plan as text lines: numbered steps with their reasons, then what was left out.
    ``engine`` maps a step id to the container commands shown under it.

    Where a step and its reason do not fit on one line ``width`` wide, the reason goes under
    the step, indented; every line is wrapped to ``width`` (long words fold, none is cut).
    """
    id_width = max((len(s.id) for s in result.steps), default=0)
    lines = []
    for i, step in enumerate(result.steps, 1):
        line = f"{i:>3}. {step.id:<{id_width}}  {step.reason}"
        if width and len(line) > width:
            lines += _wrap(f"{i:>3}. {step.id}", width, "     ")
            lines += _wrap(step.reason, width, "       ", "       ")
        else:
            lines.append(line)
        if step.at_run_time:  # the run decides this guard; the step runs if it says so
            note = f"decided at run time: {step.at_run_time}"
            lines += _wrap(note, width, "       ", "       ") if width else [f"       {note}"]
        lines += [f"       $ {c}" for c in (engine or {}).get(step.id, ())]
    notes = []
    for entry in result.ambiguous:
        matched = ", ".join(entry["matched"])
        notes.append(
            f"ambiguous: {entry['step']} {entry['kind']} tags={','.join(entry['tags'])} "
            f"matched {matched}; took {entry['chosen']}"
        )
    for entry in result.unresolved:
        tags = ",".join(entry["tags"])
        notes.append(f"missing: {entry['step']} {entry['kind']} tags={tags}: no artifact matches")
    for entry in result.again:
        back = entry["entry"]
        notes.append(
            f"at run time: {entry['step']} {entry['kind']} tags={','.join(entry['tags'])} "
            f"runs {entry['again']} again, where {back['kind']} tags={','.join(back['tags'])} "
            f"is skipped by {entry['why']}"
        )
    notes += [f"warning: {w}" for w in result.warnings]
    if result.skipped:
        notes.append(f"({len(result.skipped)} guarded dependencies left out; --json lists why)")
    for note in notes:
        lines += _wrap(note, width, "  ") if width else [note]
    return lines


def _wrap(text: str, width: int, indent: str, first: str = "") -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=indent, break_on_hyphens=False
    )
