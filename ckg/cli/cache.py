"""``ckg cache``: the cache entries of MLC/CM scripts (``cache: true``) under CKG_HOME."""

import typer

from ckg.cli.app import HelpGroup, app, open_graph, print_rows

cache_app = typer.Typer(
    cls=HelpGroup,
    help="List and remove cached script results.",
    no_args_is_help=True,
    suggest_commands=False,
    rich_markup_mode=None,
)
app.add_typer(cache_app, name="cache")


@cache_app.command("list")
def list_(
    tags: str = typer.Option("", "--tags", help="Only entries with these tags (-x excludes)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Cache entries: script, variations, version, when made and when they expire.

    Example: ckg cache list --tags get,python3
    """
    with open_graph() as kg:
        rows = kg.cache_list(tags)
    if not rows and not (as_json or as_csv):
        print("no cache entries" + (f" with tags {tags}" if tags else ""))
        return
    print_rows(
        rows,
        as_json=as_json,
        as_csv=as_csv,
        title="script cache",
        label="entry",
        optional=(("path",), ("expires",), ("script",), ("created",)),
    )


@cache_app.command("rm")
def rm(
    names: list[str] = typer.Argument(None, help="Entry names or script aliases."),
    all_: bool = typer.Option(False, "--all", help="Remove every entry."),
) -> None:
    """Remove cache entries, so that their scripts run again next time.

    Example: ckg cache rm get-python3
    """
    from ckg.core.errors import UsageError

    if not names and not all_:
        raise UsageError("ckg cache rm needs entry names, script aliases or --all")
    with open_graph() as kg:
        if all_:
            names = [row["entry"] for row in kg.cache_list()]
        removed = kg.cache_rm(list(names or []))
    if not removed:
        raise UsageError(f"no cache entry named {', '.join(names)} (see ckg cache list)")
    print(f"removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}")
