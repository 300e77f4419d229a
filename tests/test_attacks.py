import pytest
import torch

from specrobust import attacks


def mlp(seed=0, d=3 * 8 * 8, classes=5):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, classes)).eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)


@pytest.mark.parametrize("attack", ["pgd", "fgsm", "cw"])
def test_attacks_stay_in_eps_ball_and_image_box(batch, attack):
    x, y = batch
    model, eps = mlp(), 8 / 255
    if attack == "pgd":
        x_adv = attacks.pgd(model, x, y, eps, 2 / 255, 10)
    elif attack == "fgsm":
        x_adv = attacks.fgsm(model, x, y, eps)
    else:
        x_adv = attacks.cw_inf(model, x, y, eps, 2 / 255, 10)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not x_adv.requires_grad


def test_pgd_increases_loss_and_fgsm_moves_full_eps(batch):
    x, y = batch
    model = mlp()
    x_adv = attacks.pgd(model, x, y, 0.1, 0.02, 10)
    with torch.no_grad():
        ce = lambda z: torch.nn.functional.cross_entropy(model(z), y).item()  # noqa: E731
        assert ce(x_adv) > ce(x)
    x_mid = torch.full_like(x, 0.5)  # far from the box edges: every pixel moves exactly eps
    assert torch.allclose((attacks.fgsm(model, x_mid, y, 0.1) - x_mid).abs(), torch.full_like(x, 0.1), atol=1e-6)


def test_margin_sign():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 0])
    m = attacks.margin(logits, y)
    assert m.tolist() == [-2.0, 2.0]  # correct -> negative; wrong -> positive (max other - true)
    assert ((m > 0) == (logits.argmax(1) != y)).all()


def test_restarts_keep_worst_case_per_example(batch):
    x, y = batch
    model, eps = mlp(3), 0.05
    singles = []
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        singles.append(attacks.pgd(model, x, y, eps, eps / 4, 3, generator=g))
    g = torch.Generator().manual_seed(5)
    best = attacks.pgd(model, x, y, eps, eps / 4, 3, restarts=4, generator=g)
    with torch.no_grad():
        margins = torch.stack([attacks.margin(model(s), y) for s in singles])
        assert torch.allclose(attacks.margin(model(best), y), margins.max(0).values, atol=1e-6)
        # the restarts differ, so keeping the last one would be wrong for some example
        assert not torch.allclose(margins[-1], margins.max(0).values)


def test_project():
    x = torch.tensor([0.0, 0.5, 1.0])
    out = attacks.project(torch.tensor([-0.5, 0.9, 1.2]), x, 0.1)
    assert torch.allclose(out, torch.tensor([0.0, 0.6, 1.0]))
