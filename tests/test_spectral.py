import math

import pytest
import torch
from torch import nn

from specrobust.spectral import (centre_square_mask, fourier_basis, fourier_heatmap, high_pass, low_pass,
                                 mirror_index, perturbation_spectrum)


def shifted_fft(x):
    return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))


def mirrored(mask):
    """mask[mirror(s)] for every centred index s."""
    h, w = mask.shape
    rows = torch.tensor([mirror_index((h, w), i, 0)[0] for i in range(h)])
    cols = torch.tensor([mirror_index((h, w), 0, j)[1] for j in range(w)])
    return mask[rows][:, cols]


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_full_bandwidth_is_identity(size, channels):
    x = torch.rand(2, channels, size, size)
    assert torch.allclose(low_pass(x, size), x, atol=1e-5)
    assert torch.allclose(high_pass(x, size), x, atol=1e-5)
    assert low_pass(x, size).shape == x.shape and low_pass(x, size).dtype == x.dtype


def test_centre_square_indices():
    m = centre_square_mask(32, 32, 4)  # rows/cols 16-2 .. 16-2+3 = 14..17
    assert m.sum() == 16 and m[14:18, 14:18].all()
    m = centre_square_mask(32, 32, 3)  # 15..17, symmetric around the DC index 16
    assert m.sum() == 9 and m[15:18, 15:18].all()
    m = centre_square_mask(7, 7, 4)  # odd size: DC index 3, rows 1..4
    assert m.sum() == 16 and m[1:5, 1:5].all()
    assert centre_square_mask(8, 8, 0).sum() == 0 and centre_square_mask(8, 8, 9).all()
    with pytest.raises(ValueError):
        centre_square_mask(8, 8, -1)


@pytest.mark.parametrize("size", [28, 32])
def test_constant_image_is_pure_dc(size):
    const = torch.full((2, 3, size, size), 0.37, dtype=torch.float64)
    for k in range(1, size + 1):
        assert torch.allclose(low_pass(const, k), const, atol=1e-12), k
    for k in range(0, size):  # unshifted centre square never reaches index 0 for even sizes below full width
        assert torch.allclose(high_pass(const, k), torch.zeros_like(const), atol=1e-12), k
    assert torch.allclose(high_pass(const, size), const, atol=1e-12)
    assert torch.allclose(low_pass(const, 0), torch.zeros_like(const), atol=1e-12)


def test_constant_odd_size_hpf_keeps_dc_only_from_size_minus_one():
    const = torch.full((1, 1, 7, 7), 0.5, dtype=torch.float64)
    assert torch.allclose(high_pass(const, 5), torch.zeros_like(const), atol=1e-12)  # rows 1..5: no index 0
    assert torch.allclose(high_pass(const, 6), const, atol=1e-12)  # rows 0..5 contain the DC


@pytest.mark.parametrize("k", [1, 4, 7, 8, 16, 31])
def test_low_and_high_pass_decompose_exactly(k):
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    mask = centre_square_mask(32, 32, k)
    removed_lp = torch.fft.ifft2(torch.fft.ifftshift(shifted_fft(x) * ~mask, dim=(-2, -1))).real
    assert torch.allclose(low_pass(x, k) + removed_lp, x, atol=1e-12)
    removed_hp = torch.fft.ifft2(torch.fft.fft2(x) * ~mask).real
    assert torch.allclose(high_pass(x, k) + removed_hp, x, atol=1e-12)


@pytest.mark.parametrize("size", [8, 32])
def test_transfer_function_is_symmetrised_mask(size):
    """Taking the real part gives gain (M(f) + M(-f)) / 2: 1 inside, 1/2 on unpaired edges (even k), 0 outside."""
    x = torch.rand(2, 1, size, size, dtype=torch.float64)
    for k in range(0, size + 1):
        m = centre_square_mask(size, size, k).double()
        gain = shifted_fft(low_pass(x, k)) / shifted_fft(x)
        assert torch.allclose(gain, ((m + mirrored(m)) / 2).to(gain.dtype), atol=1e-9), k
        m_unshifted = torch.fft.fftshift(m)  # HPF mask (unshifted indices) in centred coordinates
        gain = shifted_fft(high_pass(x, k)) / shifted_fft(x)
        assert torch.allclose(gain, ((m_unshifted + mirrored(m_unshifted)) / 2).to(gain.dtype), atol=1e-9), k


def test_low_pass_idempotent_for_odd_k_and_full_width():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    for k in (1, 3, 5, 9, 15, 31, 32):
        once = low_pass(x, k)
        assert torch.allclose(low_pass(once, k), once, atol=1e-12), k
        once = high_pass(x, k)
        assert torch.allclose(high_pass(once, k), once, atol=1e-12), k
    once = low_pass(x, 8)  # even k < size halves the unpaired edge: not a projection
    assert not torch.allclose(low_pass(once, 8), once, atol=1e-6)


def test_high_frequency_cosine():
    m, n = torch.meshgrid(torch.arange(32.0, dtype=torch.float64), torch.arange(32.0, dtype=torch.float64),
                          indexing="ij")
    x = torch.cos(2 * math.pi * 15 * (m + n) / 32).expand(2, 3, 32, 32)  # frequency (15, 15)
    for k in (1, 4, 8, 16, 29):  # 29 = rows 2..30 of the centred spectrum: +-15 are at 1 and 31
        assert low_pass(x, k).abs().max() < 1e-9, k
    assert torch.allclose(low_pass(x, 31), x, atol=1e-9)
    assert torch.allclose(high_pass(x, 3), x, atol=1e-9)  # unshifted indices 15..17 hold +-15
    assert high_pass(x, 1).abs().max() < 1e-9  # only the Nyquist frequency (16, 16)


def test_parseval():
    x = torch.randn(4, 3, 28, 32, dtype=torch.float64)
    energy = torch.fft.fft2(x).abs().pow(2).sum((-2, -1)) / (28 * 32)
    assert torch.allclose(x.pow(2).sum((-2, -1)), energy, rtol=1e-12)
    spec = perturbation_spectrum(x)
    assert spec.shape == (28, 32)


@pytest.mark.parametrize("size", [8, 7])
def test_fourier_basis(size):
    self_mirrored = 0
    for i in range(size):
        for j in range(size):
            u = fourier_basis(size, i, j, dtype=torch.float64)
            assert u.shape == (size, size) and not u.is_complex()
            assert torch.isclose(u.norm(), torch.tensor(1.0, dtype=torch.float64), atol=1e-12)
            spec = shifted_fft(u)
            nonzero = {tuple(p) for p in (spec.abs() > 1e-9).nonzero().tolist()}
            mi, mj = mirror_index(size, i, j)
            assert nonzero == {(i, j), (mi, mj)}, (i, j)
            self_mirrored += (mi, mj) == (i, j)
            assert torch.allclose(fourier_basis(size, mi, mj, dtype=torch.float64), u)  # same image, as Yin et al.
    assert self_mirrored == (4 if size % 2 == 0 else 1)  # DC and Nyquist combinations / DC only


def test_fourier_basis_centred_convention():
    h = w = 8
    assert mirror_index(8, 4, 4) == (4, 4) and mirror_index(8, 0, 0) == (0, 0) and mirror_index(8, 5, 6) == (3, 2)
    assert mirror_index(7, 3, 3) == (3, 3) and mirror_index(7, 4, 5) == (2, 1)
    dc = fourier_basis(8, 4, 4, dtype=torch.float64)
    assert torch.allclose(dc, torch.full((8, 8), 1 / 8, dtype=torch.float64))
    m, n = torch.meshgrid(torch.arange(8.0, dtype=torch.float64), torch.arange(8.0, dtype=torch.float64),
                          indexing="ij")
    u = fourier_basis(8, 4 + 1, 4 + 2, dtype=torch.float64)  # frequency (1, 2) cycles per image
    theta = 2 * math.pi * (m / h + 2 * n / w)
    candidates = [math.sqrt(2 / (h * w)) * torch.cos(theta + p) for p in (math.pi / 4, -math.pi / 4)]
    assert any(torch.allclose(u, c, atol=1e-12) for c in candidates)
    with pytest.raises(ValueError):
        fourier_basis(8, 8, 0)


def test_perturbation_spectrum_peaks_at_frequency():
    i0, j0 = 10, 21  # centred index in 32 x 32: frequency (-6, 5)
    u = fourier_basis(32, i0, j0, dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0, 0.5, -2.0], dtype=torch.float64)[:, None, None, None]
    delta = signs * u.expand(4, 3, 32, 32)  # opposite signs must not cancel: magnitudes are averaged
    spec = perturbation_spectrum(delta)
    assert spec.shape == (32, 32)
    mi, mj = mirror_index(32, i0, j0)
    expected = torch.zeros(32, 32, dtype=torch.float64)
    expected[i0, j0] = expected[mi, mj] = signs.abs().mean() * 32 * math.sqrt(0.5)  # |sqrt(HW)(1+1j)/2|
    assert torch.allclose(spec, expected, atol=1e-9)
    assert divmod(int(spec.argmax()), 32) in {(i0, j0), (mi, mj)}


class OneFrequency(nn.Module):
    """Class 1 when the summed |projection| onto U exceeds thr (abs) or the signed projection does (signed)."""

    def __init__(self, u, thr, signed=False):
        super().__init__()
        self.register_buffer("u", u)
        self.thr, self.signed, self.saw_training = thr, signed, set()

    def forward(self, x):
        self.saw_training.add(self.training)
        assert not torch.is_grad_enabled()
        proj = (x * self.u).sum((-2, -1))  # (N, C)
        z = (proj.sum(1) if self.signed else proj.abs().sum(1)) - self.thr
        return torch.stack([-z, z], 1)


def _images_without(u, n, channels, seed):
    g = torch.Generator().manual_seed(seed)
    x = 0.25 + 0.5 * torch.rand(n, channels, *u.shape, generator=g)
    return x - (x * u).sum((-2, -1), keepdim=True) * u  # no component along u: clean z = 0


def test_fourier_heatmap_fooled_exactly_at_the_frequency():
    size, i0, j0, v = 8, 2, 5, 1.0
    u = fourier_basis(size, i0, j0)
    model = OneFrequency(u, thr=0.5 * v).train()
    x = _images_without(u, 16, 3, seed=1)
    y = torch.zeros(16, dtype=torch.long)
    heat = fourier_heatmap(model, x, y, v, batch_size=64, generator=torch.Generator().manual_seed(0))
    assert heat.shape == (size, size) and heat.min() >= 0 and heat.max() <= 1
    expected = torch.zeros(size, size, dtype=torch.float64)
    expected[i0, j0] = expected[mirror_index(size, i0, j0)] = 1.0
    assert torch.equal(heat, expected)
    assert model.training and model.saw_training == {False}  # eval mode during, previous mode restored after

    strided = fourier_heatmap(model, x, y, v, batch_size=5, freqs=2)  # batch smaller than N: several passes
    done = ~strided.isnan()
    assert done.sum() == 16 and done[size // 2, size // 2] and done[::2, ::2].all()
    assert torch.equal(strided[done], expected[done])
    picked = fourier_heatmap(model, x, y, v, freqs=[(i0, j0), (0, 0)])
    assert picked[i0, j0] == 1.0 and picked[0, 0] == 0.0 and picked.isnan().sum() == size * size - 2


def test_fourier_heatmap_random_signs_and_clipping():
    size, i0, j0, v = 8, 3, 6, 1.0
    u = fourier_basis(size, i0, j0)
    model = OneFrequency(u, thr=0.5 * v, signed=True).eval()  # 2 channels: fooled only when both signs are +1
    x = _images_without(u, 400, 2, seed=2)
    y = torch.zeros(400, dtype=torch.long)
    run = lambda seed: fourier_heatmap(model, x, y, v, batch_size=512, freqs=[(i0, j0)],  # noqa: E731
                                       generator=torch.Generator().manual_seed(seed))[i0, j0].item()
    rate = run(0)
    assert 0.17 < rate < 0.33  # 1/4 when r is drawn per image *and* channel (1/2 if shared across channels)
    assert run(0) == rate and any(run(s) != rate for s in (1, 2, 3))  # reproducible per seed

    class OutOfBox(nn.Module):
        def forward(self, x):
            bad = ((x < 0) | (x > 1)).flatten(1).any(1).float()
            return torch.stack([1 - bad, bad], 1)

    ones = torch.ones(4, 3, size, size)
    heat = fourier_heatmap(OutOfBox(), ones, torch.zeros(4, dtype=torch.long), 4.0, freqs=2)
    assert heat.nan_to_num(0.0).max() == 0.0  # every perturbed input was clipped into [0, 1]
