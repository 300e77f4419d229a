import pytest
import yaml

from conftest import ROOT, SCHEMA
from specrobust import jobs
from specrobust.config import (check_config, coerce_strings, deep_merge, eps_label, label_eps, load, number, resolve,
                               schema, step_size)
from specrobust.errors import ConfigError
from specrobust.methods import is_natural, parse_method
from specrobust.registry import ATTACK_TYPES, DATASETS


def quick(config):
    return deep_merge(config, yaml.safe_load((ROOT / "config/quick.yaml").read_text()))


def test_default_and_quick_configs_are_valid(config):
    check_config(config, SCHEMA)
    check_config(quick(config), SCHEMA)


@pytest.mark.parametrize("change,key", [
    ({"tables": {"table2": {"methods": ["pgd_at", "pgd_att_fr"]}}}, r"tables.table2.methods\[1\]"),
    ({"train": {"eps": -0.1}}, "train.eps"),
    ({"train": {"epoch": 10}}, "train.epoch"),
    ({"evaluation": {"attacks": {"pgd20": {"type": "pgd", "step": 0.1}}}}, "evaluation.attacks.pgd20.step"),
    ({"fr": {"distance": "l3"}}, "fr.distance"),
    ({"fr": {"wa_bn": "mean"}}, "fr.wa_bn"),
    ({"train": {"milestones": [90, 75]}}, "train.milestones"),
    ({"datasets": {"svhn": {"train": {"milestones": [40]}}}}, "datasets.svhn.train.milestones"),
    ({"tables": {"table2": {"datasets": ["cifar11"]}}}, r"tables.table2.datasets.0"),
    ({"tables": {"table2": {"columns": ["clean", "pgd100"]}}}, r"tables.table2.columns\[1\]"),
    ({"train": {"eps": "8/0"}}, "train.eps"),
    ({"train": {"step_size": "eps/0"}}, "train.step_size"),
    ({"train": {"device": "auto"}}, "train.device"),
    ({"tables": {"table2": {"methods": ["natural_fr"]}}}, "tables.table2.methods"),
    ({"datasets": {"cifar10": {"methods": {"pgd_att": {"train": {"lr": 0.1}}}}}}, "datasets.cifar10.methods.pgd_att"),
    ({"datasets": {"cifar10": {"methods": {"sk_a": {"train": {"milestones": [200]}}}}}},
     "datasets.cifar10.methods.sk_a.train.milestones"),
    ({"evaluation": {"eps": {"cifar10": "1/0"}}}, "evaluation.eps.cifar10"),
    ({"tables": {"table2": {"eps": {"cifar10": "unbounded"}}}}, r"tables.table2.columns\[1\] on cifar10"),
    ({"tables": {"smooth_kernels_table1": {"methods_by_dataset": {"mnist": ["sk_q"]}}}},
     r"tables.smooth_kernels_table1.methods_by_dataset.mnist\[0\]"),
    ({"methods": {"awp": {"train": {"epochs": 120}}}}, "methods.awp.train.milestones"),
])
def test_bad_configs_are_rejected_with_one_line_naming_the_key(config, change, key):
    with pytest.raises(ConfigError, match=key) as err:
        check_config(deep_merge(config, change), SCHEMA)
    assert "\n" not in str(err.value)


def test_the_schema_takes_its_names_from_the_registry():
    s = schema(SCHEMA)
    assert s["definitions"]["dataset"]["enum"] == list(DATASETS)
    assert s["definitions"]["attack"]["properties"]["type"]["enum"] == list(ATTACK_TYPES)


def test_numbers_fractions_and_steps_relative_to_eps():
    assert number("8/255") == pytest.approx(8 / 255) and number(0.5) == 0.5
    with pytest.raises(ConfigError):
        number("eight")
    assert step_size("eps/4", 8 / 255) == pytest.approx(2 / 255)      # the papers' 2/255 at 8/255
    assert step_size("eps/4", 0.3) == pytest.approx(0.075)            # and scales with MNIST's 0.3
    assert step_size("eps", 0.1) == 0.1 and step_size(0.01, 0.3) == 0.01 and step_size("2/255", 0.3) == 2 / 255


def test_threat_labels_name_the_eps_and_round_trip():
    assert [eps_label(e) for e in ("8/255", 0.1, 0.3, 0.05, None)] == \
        ["linf-8_255", "linf-0.1", "linf-0.3", "linf-0.05", "unbounded"]
    for e in (8 / 255, 0.1, 0.005, 16 / 255):
        assert label_eps(eps_label(e)) == pytest.approx(e)
    assert label_eps("unbounded") is None


def test_method_slugs():
    assert parse_method("pgd_at_fr_wa").fr == "wa" and parse_method("pgd_at_fr_wa").base == "pgd_at"
    assert parse_method("pgd_at_fr").fr == "self"
    assert parse_method("awp_fr").prefix == "awp" and parse_method("awp_fr").base == "pgd_at"


def test_natural_reference_models_are_those_trained_with_nothing_against_attacks():
    """The sanity check "a natural model falls" applies to these only: R(w) (sk_vr) is meant to resist attacks."""
    assert [m for m in ("natural", "sk_v", "l_model", "sk_vr", "pgd_at", "sk_a", "trades_fr", "external_x")
            if is_natural(m)] == ["natural", "sk_v", "l_model"]


def test_run_spec_applies_dataset_overrides(config):
    svhn = jobs.run_spec(config, "svhn", "resnet18", "pgd_at_fr", 0)
    assert (svhn.epochs, svhn.lr, svhn.milestones, svhn.augment) == (30, 0.01, (15, 25), "none")
    assert svhn.first_decay == 15 and svhn.lr_at(14) == 0.01 and svhn.lr_at(15) == pytest.approx(0.001)
    tiny = jobs.run_spec(config, "tinyimagenet", "resnet18", "pgd_at_fr", 0)
    assert tiny.fr_lambda == 0.05 and tiny.augment == "flip" and tiny.first_decay == 75
    c10 = jobs.run_spec(config, "cifar10", "resnet18", "pgd_at", 0)
    assert c10.eps == pytest.approx(8 / 255) and c10.step_size == pytest.approx(2 / 255) and c10.precision == "fp32"
    assert c10.val_step_size == pytest.approx(2 / 255)
    mnist = jobs.run_spec(config, "mnist", "small_cnn", "sk_a", 0)
    # MNIST's training attack keeps its stated absolute step; model selection's PGD-20 reaches the whole ball
    assert (mnist.eps, mnist.step_size, mnist.steps) == (0.3, 0.01, 40) and mnist.val_step_size == pytest.approx(0.075)


def test_every_awp_slug_trains_the_fr_papers_200_epoch_schedule(config):
    """FR paper App. A.7: AWP 200 epochs, x0.1 at 100 and 150 (SVHN: lr 0.01); FR/WA start at AWP's own first
    decay, and the AWP family shares its own prefix, separate from PGD-AT's."""
    for slug in ("awp", "awp_fr", "awp_fr_wa", "trades_awp", "trades_awp_fr"):
        for ds in ("cifar10", "svhn"):
            s = jobs.run_spec(config, ds, "resnet18", slug, 0)
            assert (s.epochs, s.milestones, s.first_decay) == (200, (100, 150), 100), (slug, ds)
            assert s.lr == (0.01 if ds == "svhn" else 0.1)
    assert jobs.prefix_of(config, "cifar10", "resnet18", "awp_fr") == "awp"
    assert jobs.epochs_of(config, "cifar10", "resnet18", "awp", prefix=True) == 100
    assert jobs.run_spec(config, "cifar10", "resnet18", "pgd_at_fr", 0).milestones == (75, 90)


def test_precedence_is_default_dataset_objective_family_slug_then_dataset_method(config):
    cfg = deep_merge(config, {
        "datasets": {"cifar10": {"fr": {"lam": 0.05}, "methods": {"awp_fr": {"train": {"lr": 0.3}}}}},
        "methods": {"pgd_at": {"train": {"lr": 0.2}}, "awp": {"train": {"lr": 0.25}},
                    "pgd_at_fr": {"fr": {"lam": 0.2}}}})
    check_config(cfg, SCHEMA)
    lr = {m: resolve(cfg, "train", "cifar10", m)["lr"] for m in ("pgd_at", "pgd_at_fr", "awp", "awp_fr", "trades")}
    assert lr == {"pgd_at": 0.2, "pgd_at_fr": 0.2, "awp": 0.25, "awp_fr": 0.3, "trades": 0.1}
    assert resolve(cfg, "train", "svhn", "awp_fr")["lr"] == 0.25          # the data set x method layer stays there
    assert resolve(cfg, "fr", "cifar10", "pgd_at_fr")["lam"] == 0.2      # method beats data set
    assert resolve(cfg, "fr", "cifar10", "pgd_at_fr_wa")["lam"] == 0.05  # data set beats default
    assert resolve(cfg, "fr", "cifar10", "pgd_at_fr/lam~0.15")["lam"] == 0.15   # an ablation point wins last


def test_the_fr_wa_batchnorm_mode_is_an_ablation_point_on_the_shared_prefix(config):
    """``pgd_at_fr_wa/wa_bn~average`` is the FR/WA run with averaged teacher statistics, beside the default one."""
    point = jobs.train(config, "cifar10", "resnet18", "pgd_at_fr_wa/wa_bn~average", 0)
    assert point["wa_bn"] == "average" and point["point"] == "wa_bn~average"
    assert jobs.train(config, "cifar10", "resnet18", "pgd_at_fr_wa", 0)["wa_bn"] == "reestimate"
    assert (jobs.prefix_of(config, "cifar10", "resnet18", "pgd_at_fr_wa/wa_bn~average")
            == jobs.prefix_of(config, "cifar10", "resnet18", "pgd_at_fr_wa") is not None)
    with pytest.raises(ConfigError, match="wa_bn~mean"):
        jobs.train(config, "cifar10", "resnet18", "pgd_at_fr_wa/wa_bn~mean", 0)
    ablation = {"ablations": {"fr_distance": {"method": "pgd_at_fr_wa", "param": "wa_bn", "values": ["average"]}}}
    check_config(deep_merge(config, ablation), SCHEMA)
    ablation["ablations"]["fr_distance"]["param"] = "epochs"      # not an fr key a point can set
    with pytest.raises(ConfigError, match="ablations.fr_distance.param"):
        check_config(deep_merge(config, ablation), SCHEMA)


def test_records_hold_exactly_what_a_job_uses(config):
    """So the params trigger reruns a job when, and only when, one of its values changes."""
    plain, fr = jobs.train(config, "cifar10", "resnet18", "pgd_at", 0), jobs.train(config, "cifar10", "resnet18",
                                                                                   "pgd_at_fr", 0)
    assert "fr_lambda" not in plain and fr["fr_lambda"] == 0.1 and "wa_bn" not in fr
    assert "trades_beta" not in plain and "sk_lambda" not in plain and "awp_gamma" not in plain
    assert jobs.train(config, "cifar10", "resnet18", "pgd_at_fr_wa", 0)["wa_bn"] == "reestimate"
    assert "steps" not in jobs.train(config, "cifar10", "resnet18", "natural", 0)
    ev = jobs.evaluate(config, "cifar10", "resnet18", "pgd_at", 0, "linf-8_255", "pgd20")
    assert (ev["eps"], ev["step_size"], ev["steps"]) == (pytest.approx(8 / 255), pytest.approx(2 / 255), 20)
    assert jobs.evaluate(config, "mnist", "small_cnn", "sk_a", 0, "linf-0.3", "pgd20")["step_size"] == \
        pytest.approx(0.075)                                          # a step of eps/4 reaches the whole ball
    assert set(jobs.prepare(config, "cifar10")) == {"dataset", "root", "val_fraction", "split_seed", "train_limit",
                                                     "val_limit", "test_limit"}


def test_the_threat_model_comes_from_the_table_and_data_set_never_the_checkpoint(config):
    assert jobs.table_threat(config, "table2", "cifar10") == "linf-8_255"
    assert jobs.table_threat(config, "smooth_kernels_table1", "cifar10") == "linf-0.1"     # Table 1's caption
    assert jobs.table_threat(config, "smooth_kernels_table1", "mnist") == "unbounded"
    assert jobs.table_threat(config, "smooth_kernels_table1", "restricted_imagenet") == "linf-0.05"
    # sanity checks run at the eps of the evaluations they guard; an unbounded table falls back to the data set's
    assert jobs.sanity_threat(config, "restricted_imagenet", "smooth_kernels_table1") == "linf-0.05"
    assert jobs.sanity_threat(config, "cifar10", "smooth_kernels_table1") == "linf-0.1"
    assert jobs.sanity_threat(config, "mnist", "smooth_kernels_table1") == "linf-0.3"


def test_one_method_on_one_data_set_and_pretrained_starts(config):
    cfg = deep_merge(config, {"datasets": {"mnist": {"methods": {"sk_a": {"train": {"lr": 0.3}}}}}})
    check_config(cfg, SCHEMA)
    assert resolve(cfg, "train", "mnist", "sk_a")["lr"] == 0.3 and resolve(cfg, "train", "cifar10", "sk_a")["lr"] == 0.1
    assert jobs.init_file(cfg, "restricted_imagenet", "resnet50", "sk_v") == "data/pretrained/resnet50_imagenet1k_v1.pt"
    assert jobs.init_file(cfg, "mnist", "small_cnn", "sk_v") is None
    with pytest.raises(ConfigError, match="torchvision"):
        jobs.init_file(cfg, "restricted_imagenet", "resnet18", "sk_v")
    spec = jobs.run_spec(cfg, "restricted_imagenet", "resnet50", "sk_a", 0)
    assert (spec.init, spec.eps, spec.augment) == ("torchvision", 0.005, "imagenet")


def test_command_line_strings_are_read_as_the_numbers_the_schema_asks_for(config):
    """`snakemake --config 'train={"epochs": 3}'` hands '3' to the workflow."""
    s = schema(SCHEMA)
    over = {"train": {"epochs": "3", "lr": "0.05", "compile": "true", "val_limit": "null", "eps": "8/255",
                      "step_size": "eps/4"}, "fr": {"lam": "0.2"}, "evaluation": {"n_test": "100"}}
    fixed = coerce_strings(deep_merge(config, over), s, s)
    assert fixed["train"]["epochs"] == 3 and fixed["train"]["lr"] == 0.05 and fixed["train"]["compile"] is True
    assert fixed["train"]["val_limit"] is None and fixed["fr"]["lam"] == 0.2 and fixed["evaluation"]["n_test"] == 100
    assert fixed["train"]["eps"] == "8/255" and fixed["train"]["step_size"] == "eps/4"   # strings the schema allows
    with pytest.raises(ConfigError, match="train.epochs"):
        load(deep_merge(config, {"train": {"epochs": "three"}}), SCHEMA)


def test_external_checkpoints_from_a_local_robustbench_folder(config):
    from specrobust import jobs

    cfg = deep_merge(config, {"external": {"carmon": {"path": "robustbench:Carmon2019Unlabeled", "arch": "wrn28_10",
                                                      "dataset": "cifar10", "table": "table3"}}})
    check_config(cfg, SCHEMA)
    assert jobs.external_path(cfg, "carmon") == "data/robustbench/cifar10/Linf/Carmon2019Unlabeled.pt"
    assert {c for _, _, c in jobs.external_results(cfg)} == set(config["tables"]["table3"]["columns"])
