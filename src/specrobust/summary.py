"""The summary notebook: papermill executes ``workflow/notebooks/summary.ipynb`` on a run's results, nbconvert
turns it into one self-contained HTML page (figures embedded), so the study can be read without Snakemake."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .io import atomic_write_text


def render_summary(notebook, out_ipynb, out_html, results, scale: str, tables: list[str], figures: list) -> int:
    """Execute the notebook with these parameters; write the executed notebook and its HTML. Returns HTML bytes."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    params = {"results": str(Path(results).resolve()), "scale": scale, "tables": list(tables),
              "figures": [str(Path(f).resolve()) for f in figures]}
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "summary.ipynb"
        papermill.execute_notebook(str(notebook), str(executed), kernel_name="python3", progress_bar=False,
                                   parameters=params, cwd=str(Path(results).resolve()))
        text = executed.read_text()
    html, _ = HTMLExporter().from_notebook_node(nbformat.reads(text, as_version=4))
    atomic_write_text(out_ipynb, text)
    atomic_write_text(out_html, html)
    return len(html)
