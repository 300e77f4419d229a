import pytest
import torch

from specrobust.errors import ConfigError
from specrobust.models import build_model


@pytest.mark.parametrize("arch,channels,size", [
    ("resnet18", 3, 32), ("resnet18", 3, 64), ("resnet18", 1, 28), ("preact_resnet18", 3, 32),
    ("wrn10_2", 3, 32), ("small_cnn", 1, 28), ("small_cnn", 3, 32),
])
def test_shapes(arch, channels, size):
    model = build_model(arch, 7, channels, size, [0.5] * channels, [0.25] * channels).eval()
    assert model(torch.rand(2, channels, size, size)).shape == (2, 7)


def test_normalization_is_inside_the_model():
    model = build_model("small_cnn", 10, 1, 28, [0.5], [0.25]).eval()
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(model(x), model[1]((x - 0.5) / 0.25))


def test_big_models_build():
    assert sum(p.numel() for p in build_model("resnet152", 10, 3, 32, [0] * 3, [1] * 3).parameters()) > 5.5e7
    wrn = build_model("wrn34_10", 10, 3, 32, [0] * 3, [1] * 3)
    assert 46e6 < sum(p.numel() for p in wrn.parameters()) < 47e6  # WRN-34-10 has 46.2M parameters


def test_unknown_arch():
    with pytest.raises(ConfigError, match="unknown arch"):
        build_model("vgg16", 10, 3, 32, [0] * 3, [1] * 3)
