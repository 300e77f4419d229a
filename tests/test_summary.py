"""The papermill summary notebook renders a run's results into one HTML page with every table and figure."""
import base64
import json

import pandas as pd

from conftest import ROOT
from specrobust import figures
from specrobust.summary import render_summary


def test_summary_notebook_shows_tables_checks_comparison_and_embeds_figures(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "table2.md").write_text("# Quick Table 2\n\n| Method | PGD-20 |\n|---|---|\n| pgd_at_fr | 63.40 |\n")
    pd.DataFrame({"dataset": ["fashionmnist"] * 2, "arch": ["small_cnn"] * 2, "method": ["pgd_at", "natural"],
                  "seed": [0, 0], "check": ["eps_zero_is_clean", "natural_model_falls"], "passed": [True, False],
                  "detail": ["ok", "natural model keeps 37%"]}).to_csv(res / "sanity.csv", index=False)
    pd.DataFrame({"table": ["smooth_kernels_table1"], "paper_table": ["Table 1"], "source": ["003"],
                  "dataset": ["fashionmnist"], "arch": ["small_cnn"], "method": ["sk_v"], "metric": ["pgd"],
                  "paper_setting": ["eps=unbounded"], "our_eps": ["0.1"], "paper": [0.1], "ours": [7.5],
                  "diff": [7.4], "scale": ["quick"]}).to_csv(res / "paper_comparison.csv", index=False)
    pd.DataFrame({"dataset": ["fashionmnist"], "method": ["natural"], "roughness": [1.25]}).to_csv(
        res / "kernels.csv", index=False)
    png = figures.eps_curves({"pgd_at": pd.DataFrame({"eps": [0, 0.1], "accuracy": [80.0, 60.0]})}, "eps", res / "e")[0]
    size = render_summary(ROOT / "workflow/notebooks/summary.ipynb", res / "summary.ipynb", res / "summary.html",
                          res, "quick", ["table2"], [png])
    html = (res / "summary.html").read_text()
    assert size == len(html)
    assert "Quick Table 2" in html and "63.40" in html                 # the table, from its Markdown
    assert "1 of 2 checks passed" in html and "natural model keeps 37%" in html   # sanity, failures listed
    assert "smooth_kernels_table1" in html and "Scale: <strong>quick</strong>" in html
    assert "1.25" in html                                               # kernel smoothness
    embedded = base64.b64encode(png.read_bytes()[:60]).decode()[:40]    # the figure itself, inline
    assert embedded in html
    cells = json.loads((res / "summary.ipynb").read_text())["cells"]
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)  # papermill ran it
