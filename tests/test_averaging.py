import torch

from specrobust.averaging import WeightAverage


def test_wa_update_hand_computed():
    model = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    w = model[0].weight
    with torch.no_grad():
        w.fill_(2.0)
        model[1].running_mean.fill_(1.0)
    wa = WeightAverage(model)  # k = 1: W_wa = 2
    with torch.no_grad():
        w.fill_(4.0)
        model[1].running_mean.fill_(3.0)
        model[1].num_batches_tracked.fill_(7)
    wa.update(model)  # (2 * 1 + 4) / 2 = 3
    assert wa.model[0].weight.item() == 3.0 and wa.k == 2
    assert wa.model[1].running_mean.item() == 2.0          # buffers averaged too
    assert wa.model[1].num_batches_tracked.item() == 7     # integer buffers copied
    with torch.no_grad():
        w.fill_(7.0)
    wa.update(model)  # (3 * 2 + 7) / 3 = 13 / 3
    assert abs(wa.model[0].weight.item() - 13 / 3) < 1e-6 and wa.k == 3
    assert not wa.model.training and not wa.model[0].weight.requires_grad
    assert w.item() == 7.0  # the trained model is untouched


def test_wa_state_round_trip():
    model = torch.nn.Linear(3, 2)
    wa = WeightAverage(model)
    wa.update(model)
    other = WeightAverage(torch.nn.Linear(3, 2))
    other.load_state_dict(wa.state_dict())
    assert other.k == 2
    assert torch.equal(other.model.weight, wa.model.weight)
