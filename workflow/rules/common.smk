# The config, checked once; the study's input functions. Every job's values come from one record (specrobust.jobs)
# passed as `params: job=...`; scripts never read the config.
import specrobust.jobs as jobs
from specrobust.config import THREAT_PATTERN, load
from specrobust.errors import ConfigError
from specrobust.registry import ARCH_PATTERN, DATASETS, FAMILIES, METHOD_PATTERN, POINT_PATTERN
from specrobust.resources import Requests

SCHEMA = str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
ENV = "../../envs/torch.yaml"  # data, training, attacks, sanity checks
ANALYSIS_ENV = "../../envs/analysis.yaml"  # tables, figures, reports

try:  # one clear line naming the offending key, before any job starts
    load(config, SCHEMA)
except ConfigError as err:
    sys.exit(f"Config error: {err}")

RES = Requests(config)


PREFIX_DIR = jobs.MODEL.replace("{method}", "{prefix}")  # a family's shared first-decay run
EVAL_DIR = str(Path(jobs.EVAL).parent)  # one model's evaluations at one threat model


def train_spec(w):
    """The training record of a train or train_prefix job."""
    return jobs.run_spec(config, w.dataset, w.arch, w.get("prefix", w.get("method")), w.seed)


def model_of(w):
    return (w.dataset, w.arch, w.method, int(w.seed))


def data_inputs(w):
    """The prepared data set and, for a run from scratch with a pretrained start, its weights (train.init)."""
    inputs = {"data": jobs.DATA.format(dataset=w.dataset)}
    init = jobs.init_file(config, w.dataset, w.arch, w.get("prefix", w.get("method")))
    if init:
        inputs["init"] = init
    return inputs


def train_inputs(w):
    """A start from scratch, or the family's shared first-decay checkpoint (rule train_prefix) it continues."""
    family = jobs.prefix_of(config, w.dataset, w.arch, w.method, w.seed)
    if not family:
        return data_inputs(w)
    prefix = f"{jobs.model_dir(w.dataset, w.arch, family, w.seed)}/prefix.pt"
    return {"data": jobs.DATA.format(dataset=w.dataset), "prefix": prefix}


def figure(stem):
    return multiext(f"results/figures/{stem}", ".png", ".pdf")


# ---- analyses: the natural, L- and robust models of FR Table 1 and Figures 1-4
AN = config["analysis"]
FIGURE_KINDS = "figure1|figure2|figure3|figure4|kernels"


def figure_targets():
    """Every figure the analysis section asks for (the report links them all)."""
    per_dataset = [f"results/figures/{k}_{d}.png" for d in AN["datasets"] for k in FIGURE_KINDS.split("|")]
    per_table = [f"results/figures/{k}_{t}.png" for t in AN["curves"] for k in ("training_curves", "eps_curves")]
    return per_dataset + per_table


# ---- ablations: FR paper Figure 6
ABL = config.get("ablations") or {}


def ablation_baseline(name):
    return tuple(ABL[name][k] for k in ("dataset", "arch", "baseline", "seed"))


# ---- report: what the paper comparison joins
def compared_tables():
    """Our tables that name a published table, plus the two low-pass tables."""
    named = {t: c["paper"] for t, c in config["tables"].items() if c.get("paper")}
    return named | {
        "table1": {"source": "001", "table": "Table 1"},
        "aaai_table1": {"source": "000", "table": "Table 1"},
    }


def plan_job(title, tables):
    """The plan's record: every job's row, computed here so that the plan script sees no config."""
    from specrobust.plan import plan_rows

    rows, saved = plan_rows(config, tables, analyses=tables is None, ablations=tables is None)
    return {"title": title, "rows": rows, "saved": saved}
