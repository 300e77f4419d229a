"""Per-model frequency analyses, the low-pass tables and the paper comparison, on small fixed models and data."""
import numpy as np
import pandas as pd
import pytest
import torch

from specrobust import analysis
from specrobust.comparison import write_comparison
from specrobust.evaluate import make_attack
from specrobust.models import build_model
from specrobust.spectral import low_pass
from specrobust.tables import write_lpf_table


class MeanBrightness(torch.nn.Module):
    """Class 1 iff the mean pixel exceeds 0.5: it sees only the DC term, the lowest frequency there is."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], 1) * 10


def test_bandwidth_grid_ends_at_the_image_size_and_rejects_a_step_that_does_not_divide_it():
    assert analysis.bandwidths(32, 4) == [4, 8, 12, 16, 20, 24, 28, 32]
    assert analysis.bandwidths(64, 8)[-1] == 64 and analysis.bandwidths(28, 4)[-1] == 28
    with pytest.raises(ValueError, match="divide"):
        analysis.bandwidths(28, 8)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 16, 16, generator=g) * 0.6 + 0.2
    return x, (x.mean(dim=(1, 2, 3)) > 0.5).long()


def test_full_bandwidth_is_no_filtering_and_a_dc_only_model_ignores_every_low_pass(images):
    x, y = images
    pgd = make_attack({"attack": "pgd20", "type": "pgd", "eps": 0.05, "steps": 10, "step_size": 0.02, "restarts": 1,
                       "random_start": True})
    out = analysis.spectral_analysis(MeanBrightness(), x, y, pgd, [4, 8, 16], figure_k=4)
    assert out["clean"] == 100.0
    # any k >= 1 keeps the DC term, so a model of the mean pixel is blind to low-pass filtering of clean inputs
    assert (out["clean_lpf"] == 100.0).all()
    # k = 16 = image size is the identity: filtered perturbation == the perturbation, filtered adversarial == itself
    assert out["pert_lpf"][-1] == out["pgd20"] == out["pgd20_lpf"][-1] == out["pert_hpf"][-1]
    # the attack lives in the DC term: a high-pass filter below full bandwidth removes all of it (even size)
    assert out["pgd20"] < 100 and (out["pert_hpf"][:-1] == 100.0).all()
    # and a low-pass filter keeps it whole
    assert (out["pert_lpf"] == out["pgd20"]).all()
    assert out["spectrum"].shape == (16, 16) and out["spectrum"].argmax() == 8 * 16 + 8  # DC in the centre
    assert out["images_lpf"].shape == (8, 1, 16, 16)
    np.testing.assert_allclose(out["images_lpf"], low_pass(x[:8], 4).clamp(0, 1).numpy(), atol=1e-6)


def test_analysis_runs_in_eval_mode_and_restores_training_mode(images):
    x, y = images
    model = build_model("small_cnn", 2, 1, 16, [0.5], [0.5], c1=4, c2=8, hidden=16).train()
    seen = []
    model.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    fgsm = make_attack({"attack": "fgsm", "type": "fgsm", "eps": 0.05})
    analysis.spectral_analysis(model, x[:8], y[:8], fgsm, [8, 16])
    assert seen and not any(seen) and model.training


def _spectral_npz(path, dataset, method, ks, clean_lpf, pgd_lpf, pgd):
    np.savez(path, bandwidths=np.array(ks), clean_lpf=np.array(clean_lpf), pgd20_lpf=np.array(pgd_lpf),
             pgd20=pgd, dataset=dataset, arch="resnet18", method=method, seed=0, n=100, eps=8 / 255)
    return path


def test_lpf_tables_have_the_papers_shape(tmp_path):
    ks = [4, 8, 12, 16, 20, 24, 28, 32]
    a = _spectral_npz(tmp_path / "a.npz", "cifar10", "natural", ks, np.arange(8) * 10.0, np.arange(8.0), 0.5)
    b = _spectral_npz(tmp_path / "b.npz", "cifar10", "pgd_at", ks, np.full(8, 80.0), np.full(8, 52.0), 51.8)
    t1 = write_lpf_table([a, b], tmp_path / "t1.csv", tmp_path / "t1.md", "Table 1")
    assert list(t1.columns) == ["dataset", "arch", "method", "seed"] + [f"lpf{k}" for k in ks] + ["pgd20", "n", "eps"]
    assert t1.loc[0, "lpf32"] == 70.0 and t1.loc[1, "pgd20"] == 51.8
    w = write_lpf_table([a, b], tmp_path / "w.csv", tmp_path / "w.md", "Workshop Table 1", workshop=True)
    # the five widest bandwidths, widest first, clean then PGD-20
    assert [c for c in w.columns if "lpf" in c] == [f"clean_lpf{k}" for k in (32, 28, 24, 20, 16)] + [
        f"pgd20_lpf{k}" for k in (32, 28, 24, 20, 16)]
    assert w.loc[0, "pgd20_lpf16"] == 3.0
    assert "| natural |" in (tmp_path / "w.md").read_text()


def test_paper_comparison_matches_cells_converts_fractions_and_states_the_scale(tmp_path):
    ref = tmp_path / "ref.csv"
    pd.DataFrame([
        ["001_x.txt", "Table 2", "cifar10", "resnet18", "pgd_at", "pgd20", "eps=8/255", 52.0],
        ["001_x.txt", "Table 2", "cifar10", "resnet18", "pgd_at", "clean", "eps=8/255", 82.0],
        ["001_x.txt", "Table 2", "svhn", "resnet18", "pgd_at", "clean", "eps=8/255", 90.0],     # not run: no row
        ["001_x.txt", "Table 1", "cifar10", "resnet18", "natural", "clean_lpf", "lpf=32", 94.0],
        ["001_x.txt", "Table 1", "cifar10", "resnet18", "natural", "clean_lpf", "lpf=28", 93.0],
        ["003_y.txt", "Table 1", "fashionmnist", "smallcnn", "sk_v", "pgd", "eps=unbounded", 0.25],
        ["003_y.txt", "Table 2", "fashionmnist", "smallcnn", "sk_v", "pgd", "eps=unbounded", 0.99],  # other table
    ], columns=["source", "table", "dataset", "arch", "method", "metric", "setting", "value"]).to_csv(ref, index=False)
    pd.DataFrame({"dataset": ["cifar10"], "arch": ["resnet18"], "method": ["pgd_at"], "clean": [80.0],
                  "pgd20": [53.5], "seeds": [1], "threat": ["linf-8_255"], "eps": [8 / 255], "clean_std": [None],
                  "pgd20_diff": [1.2], "pgd20_p": [0.01]}).to_csv(tmp_path / "t2.csv", index=False)
    pd.DataFrame({"dataset": ["cifar10"], "arch": ["resnet18"], "method": ["natural"], "seed": [0],
                  "lpf28": [90.0], "lpf32": [95.0], "pgd20": [0.0], "n": [100], "eps": [8 / 255]}).to_csv(
        tmp_path / "t1.csv", index=False)
    pd.DataFrame({"dataset": ["fashionmnist"], "arch": ["small_cnn"], "method": ["sk_v"],
                  "pgd20": [30.0], "eps": [0.2]}).to_csv(tmp_path / "sk.csv", index=False)  # the row's own eps
    out = write_comparison({
        "table2": (tmp_path / "t2.csv", {"source": "001", "table": "Table 2"}),
        "table1": (tmp_path / "t1.csv", {"source": "001", "table": "Table 1"}),
        "sk": (tmp_path / "sk.csv", {"source": "003", "table": "Table 1", "unit": "fraction",
                                     "metrics": {"pgd20": "pgd"}}),
    }, ref, tmp_path / "c.csv", tmp_path / "c.md", "quick")
    cells = {(r.table, r.metric, r.paper_setting): (r.paper, r.ours, r.diff) for r in out.itertuples()}
    assert cells == {("table2", "pgd20", "eps=8/255"): (52.0, 53.5, 1.5), ("table2", "clean", "eps=8/255"):
                     (82.0, 80.0, -2.0), ("table1", "clean_lpf", "lpf=32"): (94.0, 95.0, 1.0),
                     ("table1", "clean_lpf", "lpf=28"): (93.0, 90.0, -3.0), ("sk", "pgd", "eps=unbounded"):
                     (25.0, 30.0, 5.0)}
    assert set(out["scale"]) == {"quick"}
    assert dict(zip(out["table"], out["our_eps"])) == {"table2": "0.03137", "table1": "0.03137", "sk": "0.2"}
    assert "Scale: **quick**" in (tmp_path / "c.md").read_text()


def test_paper_comparison_with_no_published_counterpart_says_so(tmp_path):
    """A run on data the papers never used (the tiny synthetic MNIST of the tests, say) still gets its files."""
    ref = tmp_path / "ref.csv"
    pd.DataFrame([["001_x.txt", "Table 2", "cifar10", "resnet18", "pgd_at", "pgd20", "eps=8/255", 52.0]],
                 columns=["source", "table", "dataset", "arch", "method", "metric", "setting", "value"]).to_csv(ref,
                                                                                                            index=False)
    pd.DataFrame({"dataset": ["mnist"], "arch": ["small_cnn"], "method": ["pgd_at"], "pgd20": [60.0],
                  "eps": [0.3]}).to_csv(tmp_path / "t2.csv", index=False)
    out = write_comparison({"table2": (tmp_path / "t2.csv", {"source": "001", "table": "Table 2"})}, ref,
                           tmp_path / "c.csv", tmp_path / "c.md", "quick")
    assert out.empty and list(pd.read_csv(tmp_path / "c.csv").columns) == list(out.columns)
    assert "paper_setting" in out.columns and "our_eps" in out.columns
    assert "No cell of this run has a published counterpart" in (tmp_path / "c.md").read_text()
