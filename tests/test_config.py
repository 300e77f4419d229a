import pytest
import yaml

from conftest import ROOT, SCHEMA
from specrobust.config import check_config, deep_merge, number
from specrobust.errors import ConfigError
from specrobust.methods import is_natural, parse_method
from specrobust.spec import run_spec


def test_default_and_quick_configs_are_valid(config):
    check_config(config, SCHEMA)
    quick = deep_merge(config, yaml.safe_load((ROOT / "config/quick.yaml").read_text()))
    check_config(quick, SCHEMA)


@pytest.mark.parametrize("change,key", [
    ({"tables": {"table2": {"methods": ["pgd_at", "pgd_att_fr"]}}}, r"tables.table2.methods\[1\]"),
    ({"train": {"eps": -0.1}}, "train.eps"),
    ({"train": {"epoch": 10}}, "train.epoch"),
    ({"evaluation": {"attacks": {"pgd20": {"type": "pgd", "step": 0.1}}}}, "evaluation.attacks.pgd20.step"),
    ({"fr": {"distance": "l3"}}, "fr.distance"),
    ({"train": {"milestones": [90, 75]}}, "train.milestones"),
    ({"datasets": {"svhn": {"train": {"milestones": [40]}}}}, "datasets.svhn.train.milestones"),
    ({"tables": {"table2": {"datasets": ["cifar11"]}}}, r"tables.table2.datasets.0"),
    ({"tables": {"table2": {"columns": ["clean", "pgd100"]}}}, r"tables.table2.columns\[1\]"),
    ({"train": {"eps": "8/0"}}, "train.eps"),
    ({"train": {"device": "tpu"}}, "train.device"),
    ({"tables": {"table2": {"methods": ["natural_fr"]}}}, "tables.table2.methods"),
    ({"datasets": {"cifar10": {"methods": {"pgd_att": {"train": {"lr": 0.1}}}}}}, "datasets.cifar10.methods.pgd_att"),
    ({"datasets": {"cifar10": {"methods": {"sk_a": {"train": {"milestones": [200]}}}}}},
     "datasets.cifar10.methods.sk_a.train.milestones"),
    ({"datasets": {"restricted_imagenet": {"evaluation": {"eps": "1/0"}}}}, "datasets.restricted_imagenet.evaluation"),
    ({"tables": {"smooth_kernels_table1": {"methods_by_dataset": {"mnist": ["sk_q"]}}}},
     r"tables.smooth_kernels_table1.methods_by_dataset.mnist\[0\]"),
])
def test_bad_configs_are_rejected_with_one_line_naming_the_key(config, change, key):
    with pytest.raises(ConfigError, match=key) as err:
        check_config(deep_merge(config, change), SCHEMA)
    assert "\n" not in str(err.value)


def test_number_parses_fractions():
    assert number("8/255") == pytest.approx(8 / 255)
    assert number(0.5) == 0.5
    with pytest.raises(ConfigError):
        number("eight")


def test_method_slugs():
    assert parse_method("pgd_at_fr_wa").fr == "wa" and parse_method("pgd_at_fr_wa").base == "pgd_at"
    assert parse_method("pgd_at_fr").fr == "self"
    assert parse_method("natural").fr == "none"


def test_natural_reference_models_are_those_trained_with_nothing_against_attacks():
    """The sanity check "a natural model falls" applies to these only: R(w) (sk_vr) is meant to resist attacks."""
    assert [m for m in ("natural", "sk_v", "l_model", "sk_vr", "pgd_at", "sk_a", "trades_fr", "external_x")
            if is_natural(m)] == ["natural", "sk_v", "l_model"]


def test_run_spec_applies_dataset_overrides(config):
    svhn = run_spec(config, "svhn", "resnet18", "pgd_at_fr", 0)
    assert (svhn.epochs, svhn.lr, svhn.milestones, svhn.augment) == (30, 0.01, (15, 25), "none")
    assert svhn.first_decay == 15 and svhn.lr_at(14) == 0.01 and svhn.lr_at(15) == pytest.approx(0.001)
    tiny = run_spec(config, "tinyimagenet", "resnet18", "pgd_at_fr", 0)
    assert tiny.fr_lambda == 0.05 and tiny.augment == "flip" and tiny.first_decay == 75
    c10 = run_spec(config, "cifar10", "resnet18", "pgd_at", 0)
    assert c10.eps == pytest.approx(8 / 255) and c10.augment == "crop_flip" and c10.fr_fft == "batch2d"


def test_method_overrides_apply_in_order(config):
    cfg = deep_merge(config, {"methods": {"natural": {"train": {"epochs": 10, "milestones": [5]}},
                                          "pgd_at_fr": {"fr": {"lam": 0.2}}},
                              "datasets": {"cifar10": {"fr": {"lam": 0.05}}}})
    check_config(cfg, SCHEMA)
    assert run_spec(cfg, "cifar10", "resnet18", "natural", 0).epochs == 10
    assert run_spec(cfg, "cifar10", "resnet18", "pgd_at", 0).epochs == 100
    assert run_spec(cfg, "cifar10", "resnet18", "pgd_at_fr", 0).fr_lambda == 0.2        # method beats data set
    assert run_spec(cfg, "cifar10", "resnet18", "pgd_at_fr_wa", 0).fr_lambda == 0.05    # data set beats default
    with pytest.raises(ConfigError, match="methods.pgd_att"):
        check_config(deep_merge(config, {"methods": {"pgd_att": {}}}), SCHEMA)
    with pytest.raises(ConfigError, match="methods.natural.train.milestones"):
        check_config(deep_merge(config, {"methods": {"natural": {"train": {"epochs": 50, "milestones": [75]}}}}),
                     SCHEMA)


def test_one_method_on_one_data_set_is_overridden_last(config):
    """datasets.<d>.methods.<m> beats methods.<m> and datasets.<d>, and touches neither other data sets nor methods;
    evaluation gets the same overrides (Restricted ImageNet: attacks at eps 0.05, small batches)."""
    from specrobust.config import evaluation_section, init_file, train_section

    cfg = deep_merge(config, {"methods": {"sk_a": {"train": {"lr": 0.2}}},
                              "datasets": {"mnist": {"methods": {"sk_a": {"train": {"lr": 0.3}},
                                                                 "pgd_at": {"train": {"momentum": 0.5}}}}}})
    check_config(cfg, SCHEMA)
    assert train_section(cfg, "mnist", "sk_a")["lr"] == 0.3            # slug on the data set, last
    assert train_section(cfg, "mnist", "sk_a")["momentum"] == 0.5      # its base on the data set
    assert train_section(cfg, "cifar10", "sk_a")["lr"] == 0.2          # other data set: methods.<m> only
    assert train_section(cfg, "mnist", "sk_v")["lr"] == config["train"]["lr"]
    ev = evaluation_section(cfg, "restricted_imagenet", "sk_ar")
    assert (ev["eps"], ev["batch_size"]) == (0.05, 100) and evaluation_section(cfg, "cifar10").get("eps") is None
    # the smooth-kernel paper's CIFAR-10 rows are attacked at 0.1; the FR tables' CIFAR-10 models at their train eps
    assert [evaluation_section(cfg, "cifar10", m).get("eps") for m in ("sk_a", "sk_vr", "pgd_at", "trades")] == \
        [0.1, 0.1, None, None]
    assert init_file(cfg, "restricted_imagenet", "resnet50", "sk_v") == "data/pretrained/resnet50_imagenet1k_v1.pt"
    assert init_file(cfg, "mnist", "small_cnn", "sk_v") is None
    with pytest.raises(ConfigError, match="torchvision"):
        init_file(cfg, "restricted_imagenet", "resnet18", "sk_v")
    spec = run_spec(cfg, "restricted_imagenet", "resnet50", "sk_a", 0)
    assert (spec.init, spec.eps, spec.augment) == ("torchvision", 0.005, "imagenet")
