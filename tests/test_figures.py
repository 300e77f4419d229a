"""Figures of the frequency analyses: every function writes a readable, non-blank PNG and a PDF from synthetic data
in the stored formats; kernel smoothness numbers match hand computations."""
import io
import os
import subprocess
import sys

import matplotlib
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from specrobust import figures
from specrobust.figures import kernel_smoothness

SIZE = 32


def _lpf(x: np.ndarray, k: int) -> np.ndarray:
    """Centre k x k square of the shifted FFT (SPEC "Filters and spectra"), numpy version for synthetic data."""
    h, w = x.shape[-2:]
    f = np.fft.fftshift(np.fft.fft2(x), axes=(-2, -1))
    mask = np.zeros((h, w))
    mask[h // 2 - k // 2:h // 2 - k // 2 + k, w // 2 - k // 2:w // 2 - k // 2 + k] = 1
    return np.fft.ifft2(np.fft.ifftshift(f * mask, axes=(-2, -1))).real


def spectral_data(seed: int = 0, channels: int = 3, robust: bool = False, size: int = SIZE) -> dict:
    """A spectral dict as the analysis stores it: blob images, sign-noise perturbations, monotone curves."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for i in range(8):
        cy, cx, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.15, 0.3)]
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2).astype(float)
        colour = rng.uniform(0.2, 1.0, (channels, 1, 1))
        images.append(0.15 + 0.6 * blob[None] * colour + 0.1 * rng.random((channels, size, size)))
    images = np.clip(np.stack(images), 0, 1)
    delta = 8 / 255 * np.sign(rng.standard_normal((8, channels, size, size)))
    if robust:
        delta = np.clip(_lpf(delta, 8) * 4, -8 / 255, 8 / 255)
    ks = np.arange(4, size + 1, 4)
    t = ks / size
    return {"bandwidths": ks, "clean_lpf": 90 - 70 * np.exp(-6 * t), "pgd20": 45.0 if robust else 0.5,
            "clean": 90.0 - 8 * robust, "pgd20_lpf": 20 + 30 * np.exp(-3 * t),
            "pert_lpf": 90 - 85 * t ** 0.5, "pert_hpf": 5 + 80 * t ** 2,
            "spectrum": np.abs(np.fft.fftshift(np.fft.fft2(delta), axes=(-2, -1))).mean((0, 1)),
            "images": images, "images_lpf": np.clip(_lpf(images, 8), 0, 1),
            "images_adv": np.clip(images + delta, 0, 1), "labels": rng.integers(0, 10, 8),
            "figure1_bandwidth": 8, "eps": 8 / 255, "n": 2000}


def heatmap_data(seed: int = 0, stride: int = 1, size: int = SIZE) -> dict:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size // 2
    error = np.clip(100 * (1 - np.exp(-np.hypot(yy, xx) / (5 + 5 * seed))) + rng.normal(0, 3, (size, size)), 0, 100)
    if stride > 1:  # like spectral.fourier_heatmap(freqs=stride): NaN off the grid through the DC term
        keep = np.zeros((size, size), bool)
        keep[size // 2 % stride::stride, size // 2 % stride::stride] = True
        error[~keep] = np.nan
    return {"error": error, "v": 4.0, "n": 1000}


def kernel_data(seed: int = 0, smooth: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((64, 3, 3, 3))
    if smooth:
        w = (w[..., :1, :1] + 0.3 * np.linspace(-1, 1, 3)[None, None, :, None] * w[..., 1:2, 1:2]
             + 0.05 * rng.standard_normal(w.shape))
    return w


def training_data(n_epochs: int = 30, offset: float = 0.0, with_test: bool = True) -> pd.DataFrame:
    e = np.arange(1, n_epochs + 1)
    df = pd.DataFrame({"epoch": e, "val_clean": 85 - 40 * np.exp(-e / 6) - offset,
                       "val_pgd20": 50 - 25 * np.exp(-e / 6) + offset - 0.1 * np.maximum(e - 15, 0)})
    if with_test:
        df["test_clean"] = df["val_clean"] - 1
        df["test_pgd20"] = df["val_pgd20"] - 1.5
        df.loc[df.index[::2], ["test_clean", "test_pgd20"]] = np.nan  # tested every other epoch
    return df


def eps_data(robustness: float) -> pd.DataFrame:
    eps = np.array([0, 1, 2, 4, 8, 12, 16]) / 255
    return pd.DataFrame({"eps": eps, "accuracy": 90 * np.exp(-eps * 255 / robustness)})


def _final(values) -> pd.DataFrame:
    final = pd.DataFrame({"value": values, "clean": np.linspace(80, 78, len(values)),
                          "pgd20": np.linspace(52, 55, len(values))})
    final.attrs["baseline"] = {"clean": 81.0, "pgd20": 51.0}
    return final


CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
THREE = ("natural", "L-model", "robust")
CASES = {
    "lpf_grid": lambda out: figures.lpf_grid(spectral_data(), "CIFAR-10, robust model", out, class_names=CLASSES),
    "lpf_grid_gray_models": lambda out: figures.lpf_grid(
        {m: spectral_data(0, channels=1, robust=m == "robust") for m in THREE}, "MNIST", out),
    "perturbation_spectra": lambda out: figures.perturbation_spectra(
        {m: spectral_data(i, robust=m == "robust") for i, m in enumerate(THREE)}, "CIFAR-10: PGD-20 spectra", out),
    "bandwidth_curves": lambda out: figures.bandwidth_curves(
        {m: spectral_data(i, robust=m == "robust") for i, m in enumerate(THREE)}, "CIFAR-10", out),
    "fourier_heatmaps": lambda out: figures.fourier_heatmaps(
        {"natural": heatmap_data(0), "L-model": heatmap_data(1, stride=4), "robust": heatmap_data(2)},
        "CIFAR-10: Fourier heat maps", out),
    "kernels": lambda out: figures.kernels({"natural": kernel_data(0), "robust": kernel_data(1, smooth=True)},
                                           "CIFAR-10: first-layer kernels", out),
    "training_curves": lambda out: figures.training_curves(
        {"AT": training_data(), "AT + FR": training_data(offset=3), "old run": training_data(with_test=False)},
        "CIFAR-10 WRN-34-10", out),
    "training_curves_val_only": lambda out: figures.training_curves(
        {"AT": training_data(with_test=False).assign(test_clean=np.nan, test_pgd20=np.nan)}, "val only", out),
    "eps_curves": lambda out: figures.eps_curves({"A": eps_data(3), "AR": eps_data(5), "V": eps_data(0.7)},
                                                 "CIFAR-10: PGD accuracy against eps", out),
    "ablation_lambda": lambda out: figures.ablation(
        {"AT": training_data(), "lam=0.05": training_data(offset=1), "lam=0.1": training_data(offset=2)},
        _final([0.05, 0.1]), "lam", "pgd_at", "Figure 6 (c)", out),
    "ablation_distance": lambda out: figures.ablation(
        {"AT": training_data(with_test=False), "distance=l1": training_data(offset=2, with_test=False)},
        _final(["l1", "l2", "cosine"]), "distance", "pgd_at", "Figure 6 (a, b)", out),
}


@pytest.mark.parametrize("name", list(CASES))
def test_figure_writes_readable_png_and_pdf(tmp_path, name):
    stem = tmp_path / "sub" / f"{name}.cifar10"  # a dot in the stem must not be taken for a suffix
    paths = CASES[name](stem)
    png, pdf = tmp_path / "sub" / f"{name}.cifar10.png", tmp_path / "sub" / f"{name}.cifar10.pdf"
    assert sorted(paths) == sorted([png, pdf])
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[2] in (3, 4) and min(img.shape[:2]) > 300
    colours = np.unique(img[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50, "figure is (nearly) blank"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"%%EOF" in data[-64:] and len(data) > 2000
    assert not [p for p in png.parent.iterdir() if ".tmp" in p.name]  # no temporary files left behind


def test_figure_dpi_and_explicit_paths(tmp_path):
    png, pdf = tmp_path / "a" / "fig.png", tmp_path / "b" / "fig.pdf"
    assert figures.eps_curves({"A": eps_data(3)}, "t", [png, pdf]) == [png, pdf]
    assert png.exists() and pdf.exists()
    width_px = matplotlib.image.imread(png).shape[1]
    assert width_px >= 5.6 * 150  # 5.6 inches wide at >= 150 dpi
    with pytest.raises(ValueError):
        figures.eps_curves({"A": eps_data(3)}, "t", [png])  # a PDF is required too
    with pytest.raises(ValueError):
        figures.eps_curves({}, "t", tmp_path / "empty")


def test_stem_with_image_suffix_writes_both(tmp_path):
    paths = figures.eps_curves({"A": eps_data(3)}, "t", tmp_path / "fig.png")
    assert sorted(p.name for p in paths) == ["fig.pdf", "fig.png"] and all(p.exists() for p in paths)


def test_figures_leave_no_global_state(tmp_path):
    before = dict(matplotlib.rcParams)
    CASES["bandwidth_curves"](tmp_path / "f")
    assert dict(matplotlib.rcParams) == before
    assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()


def test_figures_run_without_torch_or_pyplot(tmp_path):
    """The analysis environment has no torch; no display either, so pyplot (and its backend choice) is unused."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['matplotlib.pyplot'] = None; "
            "import pandas as pd; from specrobust import figures; "
            "figures.eps_curves({'A': pd.DataFrame({'eps': [0, 0.03], 'accuracy': [90, 40]})}, 't', sys.argv[1]); "
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")], capture_output=True, text=True,
                       env={**os.environ, "MPLBACKEND": "", "DISPLAY": ""})
    assert r.stdout.strip() == "ok", r.stderr
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").stat().st_size > 0


def test_figures_accept_npz_loaded_data(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, **spectral_data(1, robust=True))
    buf.seek(0)
    with np.load(buf) as z:
        paths = figures.bandwidth_curves({"robust": z}, "npz", tmp_path / "npz")
        figures.lpf_grid(z, "npz", tmp_path / "grid")
    assert all(p.stat().st_size > 0 for p in paths)


def test_lpf_grid_rejects_models_with_other_images(tmp_path):
    with pytest.raises(ValueError, match="other example images"):
        figures.lpf_grid({"a": spectral_data(0), "b": spectral_data(1)}, "t", tmp_path / "g")


@pytest.mark.parametrize("channels", [1, 3])
def test_lpf_grid_draws_images_unscaled_in_channel_order(tmp_path, channels):
    """23 mid-grey cells and one pure red (RGB) or dark grey (grayscale) cell: no autoscaling, CHW -> HWC."""
    d = spectral_data(0, channels=channels)
    for key in ("images", "images_lpf", "images_adv"):
        d[key] = np.full_like(d[key], 0.5)
    d["images"][0] = 0.0 if channels == 3 else 0.2
    d["images"][0, 0] = 1.0 if channels == 3 else 0.2
    png, _ = figures.lpf_grid(d, "t", tmp_path / "g")
    img = matplotlib.image.imread(png)[..., :3]
    grey = (np.abs(img - 0.5) < 0.02).all(-1).sum()
    target = np.array([1.0, 0.0, 0.0]) if channels == 3 else np.full(3, 0.2)
    marked = (np.abs(img - target) < 0.02).all(-1).sum()
    assert marked > 0 and 18 < grey / marked < 28


def test_fill_strided_heatmap_blocks():
    h = heatmap_data(0, stride=4)
    filled, stride = figures._fill_strided(h["error"])
    assert stride == 4 and np.isfinite(filled).all()
    finite = np.isfinite(h["error"])
    np.testing.assert_array_equal(filled[finite], h["error"][finite])  # evaluated frequencies unchanged
    irregular = h["error"].copy()
    irregular[16, 17] = 50.0  # off the grid: not a strided map, keep NaN
    assert np.isnan(figures._fill_strided(irregular)[0]).any()


# ---------------------------------------------------------------------------------------------- kernel numbers
def test_kernel_smoothness_constant_kernel_is_zero():
    s = kernel_smoothness(np.full((4, 3, 3, 3), 0.7))
    assert s["roughness"] == 0.0
    assert s["high_freq_energy"] == pytest.approx(0.0, abs=1e-12)
    assert (s["kernels"], s["kh"], s["kw"]) == (12, 3, 3)


def test_kernel_smoothness_by_hand_2x2():
    # vertical pairs (1,3), (2,4): 4 + 4; horizontal (1,2), (3,4): 1 + 1; sum of squares 30
    s = kernel_smoothness(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert s["roughness"] == pytest.approx(10 / 30)
    # 2x2 DFT: DC = 10 (energy 100); the rest are at +-1/2 cycles/pixel > 1/4: 4^2 + 2^2 + 0^2 = 20 of 120
    assert s["high_freq_energy"] == pytest.approx(20 / 120)


def test_kernel_smoothness_checkerboard_rougher_than_ramp():
    i, j = np.mgrid[:3, :3]
    checker = np.where((i + j) % 2, -1.0, 1.0)
    ramp = (i + j) / 4.0
    c, r = kernel_smoothness(checker), kernel_smoothness(ramp)
    assert c["roughness"] == pytest.approx(48 / 9)  # 12 pairs, each (2)^2, over 9 squares of 1
    assert c["roughness"] > 5 * r["roughness"]
    assert c["high_freq_energy"] == pytest.approx(80 / 81)  # only DC (sum 1, energy 1) is low; total 9 * 9
    assert c["high_freq_energy"] > 0.95 and c["high_freq_energy"] > r["high_freq_energy"]
    even = np.where((np.mgrid[:4, :4].sum(0)) % 2, -1.0, 1.0)
    assert kernel_smoothness(even)["high_freq_energy"] == pytest.approx(1.0)  # all at Nyquist


def test_kernel_smoothness_scale_free_and_pooled():
    w = kernel_data(0)
    a, b = kernel_smoothness(w), kernel_smoothness(3.0 * w)
    assert a["roughness"] == pytest.approx(b["roughness"])
    assert a["high_freq_energy"] == pytest.approx(b["high_freq_energy"])
    assert 0 < a["roughness"] <= 8 and 0 < a["high_freq_energy"] < 1
    assert kernel_smoothness(kernel_data(1, smooth=True))["roughness"] < a["roughness"]
    # zero kernels neither count nor break the ratio
    padded = np.concatenate([w, np.zeros((5, 3, 3, 3))])
    assert kernel_smoothness(padded)["roughness"] == pytest.approx(a["roughness"])
    assert np.isnan(kernel_smoothness(np.zeros((2, 3, 3)))["roughness"])
    # 5x5: the low square |f| <= 1/4 is the centre 3x3 of the DFT grid, so a +-0.2 cycles/pixel cosine is low
    x = np.cos(2 * np.pi * 0.2 * np.arange(5))[None, :] * np.ones((5, 1))
    assert kernel_smoothness(x)["high_freq_energy"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        kernel_smoothness(np.ones(3))
