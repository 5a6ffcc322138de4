"""Execute a Jupyter notebook with parameters injected, as one measured ``ckg run`` step.

The runner (:mod:`ckg.run.runner`) runs ``python -m ckg.run.notebook NOTEBOOK --out OUT
--params JSON`` as the step's command, so that a notebook run is timed, metered and
recorded like any other. This process:

1. reads the notebook with ``nbformat`` and inserts a cell tagged ``injected-parameters``
   after the cell tagged ``parameters`` (at the top when there is none), assigning each
   parameter its value: papermill's convention, so the notebook's defaults are overridden;
2. executes every code cell in order with ``nbclient`` on an IPython kernel started with this
   very interpreter (a kernelspec made for the run, so no installed kernelspec is needed or
   used), its working folder the run's folder; ``CKG_NOTEBOOK_DIR`` names the notebook's own
   folder, for data files beside it;
3. writes the executed notebook to ``OUT``, whether or not a cell failed (on the step's
   timeout too: SIGTERM unwinds, shutting the kernel down), with the secrets of its
   environment and parameters masked (:mod:`ckg.core.redact`) in its cells and their outputs;
4. prints, as its last stdout line, a JSON object of the numbers the notebook glued
   (scrapbook's ``glue``, papermill's ``record``), which the runner reads as reported metrics
   beside a ``ckg-result.json`` the notebook writes in its working folder (the file wins
   for a name both give).

A failing cell ends the process with exit status 1 and, as its last line on stderr,
``cell N failed: ErrorName: message`` (N counts the notebook's cells from 1, the injected
one left out).
"""

import argparse
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from ckg.core.redact import mask_value, secret_values
from ckg.formats.notebook import glued_metrics

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
#: The executed notebook's name in the run's folder.
EXECUTED = "executed.ipynb"


def inject_parameters(nb, params: dict):
    """Insert the ``injected-parameters`` cell into ``nb`` (in place); return its index.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("# title"),
    ...     nbformat.v4.new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]})])
    >>> inject_parameters(nb, {"lr": 0.01, "name": "a"}), nb.cells[2].source
    (2, "# Parameters injected by ckg\\nlr = 0.01\\nname = 'a'")
    """
    import nbformat

    lines = ["# Parameters injected by ckg", *(f"{k} = {v!r}" for k, v in params.items())]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    at = next(
        (
            i + 1
            for i, c in enumerate(nb.cells)
            if PARAMETERS_TAG in (c.get("metadata", {}).get("tags") or ())
        ),
        0,
    )
    nb.cells.insert(at, cell)
    return at


def execute(path: Path, out: Path, params: dict, cwd: Path) -> str:
    """Run the notebook at ``path`` with ``params``; write it executed to ``out``.

    Returns "" when every cell ran, else ``cell N failed: Error: message``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    injected = inject_parameters(nb, params) if params else None
    failure = ""
    try:
        with tempfile.TemporaryDirectory(prefix="ckg-kernel-") as kernels:
            manager = _kernel_manager(Path(kernels))
            client = NotebookClient(nb, km=manager, resources={"metadata": {"path": str(cwd)}})
            with client.setup_kernel():
                for index, cell in enumerate(nb.cells):
                    try:
                        client.execute_cell(cell, index)
                    except CellExecutionError as exc:
                        number = index + 1 - (injected is not None and index > injected)
                        failure = f"cell {number} failed: {exc.ename}: {exc.evalue}"
                        break
    finally:  # kept however it ended: a failed cell, or the step's timeout (SIGTERM)
        out.parent.mkdir(parents=True, exist_ok=True)
        secrets = secret_values(os.environ, params)
        nbformat.write(nbformat.from_dict(mask_value(nb, secrets)), out)
    return failure


def _kernel_manager(kernels: Path):
    """A kernel manager for an IPython kernel on this interpreter (``sys.executable``).

    Jupyter would take the first ``python3`` kernelspec it finds, which may be another
    Python's; a spec written for this run names this one, whatever is installed. The kernel
    talks over Unix sockets in ``kernels`` (a private temporary folder).
    """
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = kernels / "ckg-python"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python (ckg run)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    manager = KernelSpecManager(kernel_dirs=[str(kernels)])
    # Unix sockets in the private folder, not TCP ports any local user could reach.
    return KernelManager(
        kernel_name="ckg-python",
        kernel_spec_manager=manager,
        transport="ipc",
        ip=str(kernels / "kernel"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ckg.run.notebook")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", default="{}", help="JSON object of parameter values")
    args = parser.parse_args(argv)
    import nbformat

    os.environ["CKG_NOTEBOOK_DIR"] = str(args.notebook.parent)
    # A timeout sends SIGTERM: unwind, so the kernel is shut down and the notebook kept.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    failure = execute(args.notebook, args.out, json.loads(args.params), Path.cwd())
    if failure:
        print(f"{args.notebook.name}: {failure}", file=sys.stderr)
        return 1
    print(json.dumps(glued_metrics(nbformat.read(args.out, as_version=4))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
