import numpy as np
import pytest
import torch

from specrobust import sanity

CFG = {"tolerance": 1.0, "noise_tolerance": 5.0, "eps_grid": [0.5, 1, 2], "steps": 10, "restarts": 2,
       "square_queries": 300, "crosscheck_tolerance": 1.0, "natural_max_pgd": 1.0}


@pytest.mark.parametrize("check,good,bad", [
    (sanity.eps_zero, (80.0, 80.0), (79.5, 80.0)),
    (sanity.monotone, ([0, 0.1, 0.2], [80.0, 40.0, 0.0], 1.0), ([0, 0.1, 0.2], [80.0, 40.0, 45.0], 1.0)),
    (sanity.unbounded, (0.0, 1.0), (12.0, 1.0)),
    (sanity.more_steps, (50.0, 49.0, 1.0, "pgd100"), (50.0, 53.0, 1.0, "pgd100")),
    (sanity.aa_not_weaker, (47.0, {"pgd20": 50.0, "cw": 48.0}, 1.0), (51.0, {"pgd20": 50.0, "cw": 48.0}, 1.0)),
    (sanity.blackbox_not_stronger, (60.0, 50.0, 1.0), (30.0, 50.0, 1.0)),
    (sanity.noise_near_clean, (78.0, 80.0, 5.0), (60.0, 80.0, 5.0)),
    (sanity.natural_breaks, (0.0, 1.0), (35.0, 1.0)),
    (sanity.learned, (60.0, 10), (10.4, 10)),
    (sanity.crosscheck, (50.0, 50.5, 1.0, "foolbox"), (50.0, 53.0, 1.0, "foolbox")),
])
def test_each_check_passes_and_fails(check, good, bad):
    assert check(*good).passed
    failed = check(*bad)
    assert not failed.passed and failed.detail


class RoundInput(torch.nn.Module):
    """Gradient masking by construction: rounding has zero gradient, so white-box attacks see nothing."""

    def __init__(self, net, levels=8):
        super().__init__()
        self.net, self.levels = net, levels

    def forward(self, x):
        return self.net(torch.round(x * self.levels) / self.levels)


@pytest.fixture(scope="module")
def natural_mlp():
    """Accurate but not robust: ten random prototype images plus small noise, a naturally trained MLP."""
    g = torch.Generator().manual_seed(0)
    protos = 0.3 + 0.4 * torch.rand(10, 1, 10, 10, generator=g)
    y = torch.randint(0, 10, (600,), generator=g)
    x = (protos[y] + 0.05 * torch.randn(600, 1, 10, 10, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(100, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[:500]), y[:500]).backward()
        opt.step()
    return net.eval(), x[500:], y[500:]


def by_name(checks):
    return {c.check: c for c in checks}


def test_sound_natural_model_passes_everything(natural_mlp):
    net, x, y = natural_mlp
    checks = by_name(sanity.run_sanity(net, x, y, 0.15, CFG, natural=True))
    assert len(checks) == 12  # the AutoAttack comparison needs evaluation results, none given here
    failed = [c for c in checks.values() if not c.passed]
    assert not failed, failed
    assert checks["eps_zero_is_clean"].reference > 80  # the model is actually accurate


def test_a_collapsed_model_is_caught():
    """A model stuck at one class (AT-AWP collapsed like this on the quick config) must not pass as "robust"."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    torch.nn.init.zeros_(net[1].weight)
    net[1].bias.data = torch.arange(10.0)  # always class 9
    x, y = torch.rand(40, 1, 2, 2), torch.arange(40) % 10
    checks = by_name(sanity.run_sanity(net, x, y, 0.1, CFG, natural=False))
    assert not checks["clean_above_chance"].passed and "did not learn" in checks["clean_above_chance"].detail
    assert not checks["predictions_spread"].passed and checks["predictions_spread"].value == 100.0
    assert not checks["attack_moves_accuracy"].passed          # a constant model: no attack changes anything
    assert checks["pgd10_x2_restarts_not_weaker"].passed  # the robustness checks alone would not notice


def test_gradient_masked_model_is_caught(natural_mlp):
    net, x, y = natural_mlp
    checks = by_name(sanity.run_sanity(RoundInput(net), x, y, 0.15, CFG, natural=True))
    assert not checks["natural_model_falls"].passed          # PGD finds (almost) nothing ...
    assert not checks["blackbox_not_stronger"].passed        # ... while the black-box Square attack does
    assert checks["eps_zero_is_clean"].passed                # checks that do not concern masking still pass


def test_aa_comparison_uses_the_same_images():
    flags = {"aa": np.array([1, 0, 0, 1], bool), "pgd20": np.array([1, 1, 0, 1, 0, 0], bool),
             "clean": np.ones(6, bool)}
    c = sanity.aa_not_weaker(50.0, {"pgd20": 100 * flags["pgd20"][:4].mean()}, 1.0)
    assert c.passed and c.reference == 75.0


def test_sanity_table_lists_failures(tmp_path):
    import pandas as pd
    rows = [sanity.eps_zero(1.0, 1.0).row(dataset="d", arch="a", method="m", seed=0, n=4),
            sanity.natural_breaks(30.0, 1.0).row(dataset="d", arch="a", method="natural", seed=0, n=4)]
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    from specrobust.tables import write_sanity_table
    failed = write_sanity_table([tmp_path / "s.csv"], tmp_path / "all.csv", tmp_path / "all.md")
    assert len(failed) == 1 and "natural_model_falls" in failed[0]
    md = (tmp_path / "all.md").read_text()
    assert "1 of 2 passed" in md and "FAIL d/a/natural/seed0 natural_model_falls" in md
