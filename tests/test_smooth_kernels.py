"""Smooth-kernel paper analyses (seed 003, Sections 4.1-4.3, Appendices B-C): the four-shapes data set, the per-model
analyses of specrobust.smooth_kernels and their figures. One tiny CNN trained for a few seconds on four-shapes images
serves every analysis test; hand-built models give exact checks."""
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from specrobust import figures
from specrobust import smooth_kernels as sk
from specrobust.models import build_model
from specrobust.shapes import SHAPE_CLASSES, make_shapes

SIZE = 28


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one thread is faster than two, and far faster on a shared, loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shapes_model():
    """A small CNN (4/8 channels, 32 hidden) trained 150 Adam steps on 600 four-shapes images, with 200 held-out
    test images. Returns (model, x_test, y_test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = make_shapes(600, SIZE, seed=11)
    xt, yt = make_shapes(200, SIZE, seed=12)
    X, Y = _tensor(x), torch.as_tensor(y)
    model = build_model("small_cnn", 4, 1, SIZE, [0.5], [0.5], c1=4, c2=8, hidden=32)
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, len(X), (32,), generator=g)
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(before)
    return model.eval(), _tensor(xt), torch.as_tensor(yt)


# -------------------------------------------------------------------------------------------------- four shapes
def test_shapes_deterministic_balanced_and_typed():
    x, y = make_shapes(42, SIZE, seed=3)
    x2, y2 = make_shapes(42, SIZE, seed=3)
    x3, _ = make_shapes(42, SIZE, seed=4)
    assert x.shape == (42, SIZE, SIZE, 1) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert np.bincount(y, minlength=4).tolist() == [11, 11, 10, 10]
    assert SHAPE_CLASSES == ("circle", "star", "square", "triangle")
    assert len(set(y[:12].tolist())) > 1  # shuffled, not in blocks


def test_shapes_black_on_white_and_inside():
    x, y = make_shapes(400, SIZE, seed=5)
    img = x[..., 0]
    border = np.concatenate([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], 1)
    assert (border == 255).all()                       # the whole shape lies inside the frame
    assert (img == 255).mean() > 0.5 and (img == 0).mean() > 0.1     # white background, black foreground
    assert (img.reshape(len(img), -1).min(1) == 0).all()            # a black shape in every image
    assert len(np.unique(img)) > 10                                   # anti-aliased edges
    # analytic areas for the same circumradius: circle (pi) > square (2) > triangle (1.30) > regular star (1.12)
    dark = (255 - img.astype(np.float64)).reshape(len(img), -1).sum(1) / 255
    means = [dark[y == c].mean() for c in range(4)]
    assert means[0] > means[2] > means[3] > means[1]


def test_shapes_are_learnable(shapes_model):
    model, x, y = shapes_model
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.9


# ----------------------------------------------------------------------------------------------------- Figure 1
def test_first_layer_view_spectra_and_features():
    model = build_model("small_cnn", 4, 1, 12, [0.5], [0.25], c1=5, c2=2, hidden=8)
    conv = model[1].conv1
    i, j = np.mgrid[:5, :5]
    known = {0: np.ones((5, 5)) / 25, 1: (-1.0) ** (i + j), 2: (i == 2) & (j == 2)}
    with torch.no_grad():
        for k, w in known.items():
            conv.weight[k, 0] = torch.as_tensor(w.astype(np.float32))
    image = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(0))
    out = sk.first_layer_view(model, image, n_kernels=4, pad=32)
    assert out["kernels"].shape == (4, 1, 5, 5) and out["spectra"].shape == (4, 32, 32)
    assert out["features"].shape == (4, 12, 12)
    spec = out["spectra"]
    assert spec[0, 16, 16] == pytest.approx(1.0, abs=1e-6)          # DC of the mean filter: sum of weights
    assert spec[0].max() == pytest.approx(1.0, abs=1e-6)
    assert spec[1, 0, 0] == pytest.approx(25.0, abs=1e-4)           # checkerboard: all energy at Nyquist (corner)
    assert spec[1].argmax() == 0 and spec[1, 16, 16] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(spec[2], 1.0, atol=1e-6)                      # a delta has a flat spectrum
    w = out["kernels"][3, 0]
    manual = np.abs(np.fft.fftshift(np.fft.fft2(w, s=(32, 32))))
    assert np.allclose(spec[3], manual, atol=1e-5)
    direct = F.conv2d((image[None] - 0.5) / 0.25, conv.weight[:4], conv.bias[:4], padding=2)[0]
    assert np.allclose(out["features"], direct.detach().numpy(), atol=1e-5)   # before ReLU
    assert np.allclose(out["features_relu"], np.maximum(direct.detach().numpy(), 0), atol=1e-5)
    assert out["features"].min() < 0
    assert model.training  # fp32_eval restored the mode


def test_first_layer_view_resnet_stem_rgb():
    torch.manual_seed(0)
    model = build_model("resnet18", 10, 3, 16, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    image = torch.rand(3, 16, 16)
    out = sk.first_layer_view(model, image, pad=8)
    stem = model[1].conv1.weight.detach()
    assert out["kernels"].shape == (4, 3, 3, 3) and out["spectra"].shape == (4, 8, 8)
    assert np.allclose(out["kernels_2d"], stem[:4].sum(1).numpy())
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    direct = F.conv2d(((image - mean) / std)[None], stem[:4], padding=1)[0]
    assert np.allclose(out["features"], direct.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------------------------------- Figure 2
def test_fgsm_minimal_is_the_first_fooling_eps(shapes_model):
    model, x, y = shapes_model
    x, y = x[:60], y[:60]
    grid = np.linspace(0.01, 0.6, 60)
    out = sk.fgsm_minimal(model, x, y, grid, batch_size=25)
    assert out["fooled"].sum() >= 10
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
    with torch.no_grad():
        for i in np.flatnonzero(out["fooled"])[:10]:
            k = int(np.flatnonzero(np.isclose(grid, out["eps"][i]))[0])
            cands = torch.stack([(x[i] + float(e) * grad[i].sign()).clamp(0, 1) for e in grid[:k + 1]])
            preds = model(cands).argmax(1)
            assert (preds[:-1] == y[i]).all() and preds[-1] != y[i]          # first eps of the grid that fools
            assert np.allclose(out["adv"][i], cands[-1].numpy(), atol=1e-6)
            assert out["pred"][i] == preds[-1]
            assert out["wrong_conf"][i] == pytest.approx(F.softmax(model(cands[-1:]), 1).max().item(), abs=1e-5)
    assert (out["wrong_conf"][~out["fooled"]] == 0).all()
    assert np.isnan(out["eps"][~out["fooled"]]).all()
    assert np.array_equal(out["adv"][~out["fooled"]], x[~torch.as_tensor(out["fooled"])].numpy())


def test_deceptive_images_average_the_most_confident(shapes_model):
    model, x, y = shapes_model
    x, y = x[:80], y[:80]
    grid = np.linspace(0.02, 1.0, 50)
    out = sk.deceptive_images(model, x, y, grid, num_classes=4, top_k=3, batch_size=40)
    per, yn, xn = out["per_example"], y.numpy(), x.numpy()
    assert out["images"].shape == (4, 1, SIZE, SIZE) == out["originals"].shape
    assert out["selected"].shape == (4, 3)
    for c in range(4):
        sel = out["selected"][c]
        sel = sel[sel >= 0]
        assert out["count"][c] == len(sel)
        if not len(sel):
            assert np.isnan(out["images"][c]).all()
            continue
        assert (yn[sel] == c).all() and per["fooled"][sel].all()
        others = np.setdiff1d(np.flatnonzero((yn == c) & per["fooled"]), sel)
        assert all(per["wrong_conf"][sel].min() >= per["wrong_conf"][o] for o in others)
        assert np.allclose(out["images"][c], per["adv"][sel].mean(0), atol=1e-6)
        assert np.allclose(out["originals"][c], xn[sel].mean(0), atol=1e-6)
        assert (out["pred"][c][:len(sel)] != c).all()
    assert (out["count"] > 0).sum() >= 2
    # the paper's layout: one original per class shared by every model, chosen by the mean wrong-class confidence
    other = sk.fgsm_minimal(build_model("small_cnn", 4, 1, SIZE, [0.5], [0.5], c1=4, c2=8, hidden=32).eval(),
                            x, y, grid)
    both = sk.deceptive_across_models({"A": out, "B": other}, x, y, 4)
    score = (np.where(per["fooled"], per["wrong_conf"], 0) + np.where(other["fooled"], other["wrong_conf"], 0)) / 2
    for c in range(4):
        i = both["selected"][c, 0]
        if i >= 0:
            assert yn[i] == c and score[i] == pytest.approx(score[yn == c].max())
            assert np.allclose(both["originals"][c], xn[i])
            assert np.allclose(both["models"]["A"]["images"][c], per["adv"][i])
            assert np.allclose(both["models"]["B"]["images"][c], other["adv"][i])


# -------------------------------------------------------------------------------------------------- Figures 3-6
class _Regions(nn.Module):
    """Logit c = sum of the pixels in horizontal band c (disjoint bands): maximising a logit fills its own band."""

    def __init__(self, k=4, size=8):
        super().__init__()
        w = torch.zeros(k, size * size)
        for c in range(k):
            band = torch.zeros(size, size)
            band[c * size // k:(c + 1) * size // k] = 1.0
            w[c] = band.flatten()
        self.linear = nn.Linear(size * size, k, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(w)

    def forward(self, x):
        return self.linear(x.flatten(1))


def test_class_images_plain_projected_ascent_exact():
    model = _Regions()
    out = sk.class_images(model, 4, (1, 8, 8), steps=50, lr=0.02, seed=3)
    g = torch.Generator().manual_seed(3)
    expect = (0.5 + 0.1 * torch.randn((1, 1, 8, 8), generator=g)).clamp(0, 1).repeat(4, 1, 1, 1).numpy()
    assert np.allclose(out["start"], expect)
    w = model.linear.weight.detach().numpy().reshape(4, 1, 8, 8)
    x = expect.copy()
    for _ in range(50):
        x = np.clip(x + 0.02 * w, 0, 1)  # plain gradient of the target logit, then the [0, 1] box
    assert np.allclose(out["images"], x, atol=1e-6)
    assert (out["pred"] == np.arange(4)).all()
    assert (out["logits"].argmax(1) == out["target"]).all()
    assert out["images"].min() >= 0 and out["images"].max() <= 1


def test_class_images_reach_their_class_on_trained_cnn(shapes_model):
    model, _, _ = shapes_model
    out = sk.class_images(model, 4, (1, SIZE, SIZE), steps=90, lr=0.03, seed=0, step="sign", objective="ce",
                          record_every=30)
    logits = out["logits"]
    for c in range(4):
        assert logits[c, c] > np.delete(logits[c], c).max()
    with torch.no_grad():
        again = model(torch.as_tensor(out["images"])).numpy()
    assert np.allclose(again, logits, atol=1e-4)
    assert out["trace_logit"].shape == (3, 4) and (out["trace_logit"][-1] > out["trace_logit"][0]).all()
    same = sk.class_images(model, 4, (1, SIZE, SIZE), steps=5, lr=0.02, seed=0, step="sign", objective="ce")
    assert np.array_equal(same["start"], out["start"])  # the seed fixes the noise
    logit = sk.class_images(model, 4, (1, SIZE, SIZE), steps=30, lr=0.03, seed=0, step="sign")
    tl = logit["logits"][np.arange(4), np.arange(4)]
    assert (tl > sk.class_images(model, 4, (1, SIZE, SIZE), steps=0, seed=0)["logits"].diagonal()).all()


# ---------------------------------------------------------------------------------------------------- App. C
def test_targeted_grid_consistent(shapes_model):
    model, x, y = shapes_model
    src = sk.pick_sources(model, x, y, 4)
    assert (src >= 0).all() and (y.numpy()[src] == np.arange(4)).all()
    xs = x[torch.as_tensor(src)]
    out = sk.targeted_grid(model, xs, sk.targeted_pgd_attack(eps=0.3, step_size=0.05, steps=10))
    k = 4
    assert out["images"].shape == (k, k, 1, SIZE, SIZE) and out["pred"].shape == (k, k)
    for s in range(k):
        assert np.array_equal(out["images"][s, s], xs[s].numpy())   # diagonal = source
    assert np.array_equal(out["success"], out["pred"] == np.arange(k)[:, None])
    with torch.no_grad():
        pred = model(torch.as_tensor(out["images"]).flatten(0, 1)).argmax(1).view(k, k).numpy()
    assert np.array_equal(pred, out["pred"])
    assert out["success"].diagonal().all()
    off = ~np.eye(k, dtype=bool)
    assert out["success"][off].mean() >= 0.5
    assert (out["linf"][off] <= 0.3 + 1e-6).all() and (out["linf"].diagonal() == 0).all()
    # an attack that changes nothing fails everywhere off the diagonal, and is marked so
    none = sk.targeted_grid(model, xs, lambda m, xb, t: xb)
    assert not none["success"][off].any() and (none["pred"] == np.arange(k)[None, :]).all()
    # the default attack (log-softmax ascent from the source, unbounded) reaches the targets
    ascent = sk.targeted_grid(model, xs, sk.ascent_attack(steps=60, lr=0.03))
    assert ascent["success"].all()


# ------------------------------------------------------------------------------------------------------ figures
def _big_enough(paths):
    assert {p.suffix for p in paths} == {".png", ".pdf"}
    for p in paths:
        assert p.stat().st_size > 5000, p


def _star(size=16):
    x, y = make_shapes(8, size, seed=0)
    return x[y == 1][0].transpose(2, 0, 1) / 255.0


def test_sk_figure1_writes(tmp_path):
    rng = np.random.default_rng(0)
    models = {}
    for label, smooth in (("V", False), ("VR", True)):
        k = rng.standard_normal((4, 5, 5))
        if smooth:
            k = np.cumsum(np.cumsum(k, 1), 2) / 5
        models[label] = {"kernels_2d": k, "spectra": np.abs(np.fft.fftshift(np.fft.fft2(k, s=(32, 32)), axes=(-2, -1))),
                         "features": rng.standard_normal((4, 16, 16)), "image": _star()}
    _big_enough(figures.sk_figure1(models, "Figure 1", tmp_path / "f1"))


def test_sk_figure2_writes(tmp_path):
    rng = np.random.default_rng(1)
    orig = rng.random((4, 1, 16, 16))
    models = {"V": {"images": np.clip(orig + 0.2 * rng.standard_normal(orig.shape), 0, 1),
                    "pred": np.array([[1], [2], [3], [0]]), "conf": np.full((4, 1), 0.9),
                    "eps": np.array([[0.1], [0.2], [np.nan], [0.3]])},
              "VR": np.where(np.arange(4)[:, None, None, None] == 2, np.nan, orig)}
    _big_enough(figures.sk_figure2(models, orig, SHAPE_CLASSES, "Figure 2", tmp_path / "f2"))
    _big_enough(figures.sk_figure2({"V": orig}, {"V": orig}, SHAPE_CLASSES, "per model", tmp_path / "f2b"))


def test_sk_class_images_writes(tmp_path):
    rng = np.random.default_rng(2)
    start = np.repeat(rng.random((1, 1, 16, 16)), 4, 0)
    models = {"V": {"images": rng.random((4, 1, 16, 16)), "start": start, "pred": np.array([0, 1, 1, 3]),
                    "target": np.arange(4)},
              "VR": rng.random((4, 1, 16, 16))}
    _big_enough(figures.sk_class_images(models, SHAPE_CLASSES, "Figures 3-6", tmp_path / "ci"))
    _big_enough(figures.sk_class_images({"A": rng.random((3, 3, 8, 8))}, None, "rgb", tmp_path / "ci_rgb",
                                        stretch=True))


def test_sk_distance_curves_writes(tmp_path):
    b = np.linspace(0, 3, 40)
    curves = {label: {attack: (b, 100 * np.exp(-b * r * (1 + i)))
                      for i, attack in enumerate(["DeepFool L2", "C&W", "ADef"])}
              for label, r in (("V", 2.0), ("VR", 1.0), ("VH", 3.0), ("A", 0.8), ("AR", 0.5))}
    curves["A"]["S&P"] = {"bounds": [0, 1, 2], "accuracy": [90, 50, 10]}
    _big_enough(figures.sk_distance_curves(curves, "2", "Figure 8", tmp_path / "d"))
    both = {"MNIST": curves, "CIFAR10": {k: curves[k] for k in ("V", "VR")}}
    _big_enough(figures.sk_distance_curves(both, "inf", "Figure 9", tmp_path / "d9", by_dataset=True))


def test_sk_targeted_writes(tmp_path):
    rng = np.random.default_rng(3)
    k = 4
    pred = np.tile(np.arange(k)[:, None], (1, k))
    pred[0, 1] = 1
    grid = {"images": rng.random((k, k, 1, 16, 16)), "pred": pred, "success": pred == np.arange(k)[:, None]}
    _big_enough(figures.sk_targeted(grid, SHAPE_CLASSES, "App. C", tmp_path / "t"))


# ------------------------------------------------------------------------------------------------ rule wrappers
def test_run_wrappers_write_npz(tmp_path):
    from conftest import saved_tiny_run

    model_path, data_path = saved_tiny_run(tmp_path, "sk_v", 30)
    y = np.load(data_path)["y_test"]
    fl = sk.run_first_layer(model_path, data_path, tmp_path / "f1.npz", image_class=int(y[3]), log=lambda *_: None)
    assert fl["kernels"].shape == (2, 1, 5, 5) and fl["test_position"] <= 3
    saved = np.load(tmp_path / "f1.npz")
    assert np.array_equal(saved["features"], fl["features"]) and str(saved["method"]) == "sk_v"
    sk.run_fgsm_minimal(model_path, data_path, tmp_path / "fgsm.npz", np.linspace(0.05, 1, 20), n_test=10,
                        log=lambda *_: None)
    assert np.load(tmp_path / "fgsm.npz")["adv"].shape == (10, 1, 12, 12)
    ci = sk.run_class_images(model_path, tmp_path / "ci.npz", steps=4, lr=0.01, log=lambda *_: None)
    assert ci["images"].shape == (10, 1, 12, 12) and np.load(tmp_path / "ci.npz")["logits"].shape == (10, 10)
