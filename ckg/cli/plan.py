"""``ckg plan``: the ordered steps that run a target, and why each is there."""

import json

import typer

from ckg.cli.app import app, open_graph
from ckg.errors import UsageError


@app.command("plan")
def plan(
    target: str = typer.Argument(..., help="Artifact uid, alias or tags (_name: variation)."),
    var: list[str] = typer.Option(None, "--var", help="Variation of the target, repeatable."),
    env: list[str] = typer.Option(None, "--env", help="K=V (or ALIAS:K=V), repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    dot: bool = typer.Option(False, "--dot", help="Print the plan as Graphviz dot."),
) -> None:
    """Print the steps that run TARGET in order, and why each step is there.

    Example: ckg plan app-image-classification-onnx-py --env USE_CUDA=yes
    """
    from ckg.run.workflow import parse_env

    if as_json and dot:
        raise UsageError("--json and --dot are exclusive; choose one")
    user_env = parse_env(env)
    with open_graph() as kg:
        result = kg.plan(target, variations=tuple(var or ()), env=user_env)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif dot:
        print(result.to_dot())
    else:
        print("\n".join(render(result)))


def render(result) -> list[str]:
    """The plan as text lines: numbered steps with their reasons, then what was left out."""
    width = max((len(s.id) for s in result.steps), default=0)
    lines = [f"{i:>3}. {s.id:<{width}}  {s.reason}" for i, s in enumerate(result.steps, 1)]
    for entry in result.ambiguous:
        matched = ", ".join(entry["matched"])
        lines.append(
            f"ambiguous: {entry['step']} {entry['kind']} tags={','.join(entry['tags'])} "
            f"matched {matched}; took {entry['chosen']}"
        )
    for entry in result.unresolved:
        tags = ",".join(entry["tags"])
        lines.append(f"missing: {entry['step']} {entry['kind']} tags={tags}: no artifact matches")
    lines += [f"warning: {w}" for w in result.warnings]
    if result.skipped:
        lines.append(f"({len(result.skipped)} guarded dependencies left out; --json lists why)")
    return lines
