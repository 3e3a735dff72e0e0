"""Execute a notebook and keep its outputs (``scripts/execute_notebook.py``, ``make notebook``)."""

from pathlib import Path

from lossd.errors import DataFormatError
from lossd.io import atomic_path

__all__ = ["execute_notebook"]


def execute_notebook(path: str | Path, out: str | Path | None = None, timeout: int = 600) -> Path:
    """Run every cell of ``path`` in a fresh ``python3`` kernel, in the notebook's folder.

    Cell timings are not recorded (``record_timing=False``), so equal inputs give an equal file.
    The result is written atomically; a cell that fails leaves the file as it was.

    Args:
        path: The notebook.
        out: Where to write the executed notebook (default: ``path``).
        timeout: Seconds allowed per cell.

    Returns:
        The file written.

    Raises:
        DataFormatError: If ``path`` is not a valid notebook, or a cell raises (its error is
            named).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source = Path(path)
    try:
        notebook = nbformat.read(source, as_version=4)  # type: ignore[no-untyped-call]
    except (ValueError, nbformat.ValidationError) as err:
        raise DataFormatError(f"'{source}' is not a valid notebook: {err}") from err
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(source.resolve().parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as err:
        raise DataFormatError(f"a cell of '{source}' failed: {err}") from err
    target = Path(out) if out is not None else source
    with atomic_path(target) as tmp:
        nbformat.write(notebook, tmp)  # type: ignore[no-untyped-call]
    return target
