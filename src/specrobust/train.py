"""Training: one loop for every method, resumable from a checkpoint each epoch, branchable at the first LR decay.

Per epoch: set the learning rate of the papers' step schedule, train on GPU-resident batches (no host sync in the
inner loop), evaluate clean and PGD-20 accuracy on the validation split in fp32, keep the best checkpoint by
validation PGD-20 (the papers' model selection; best clean accuracy for natural training), write an atomic
checkpoint and the metrics so far (so a killed run leaves every finished epoch), log progress with an ETA.

FR and FR/WA runs are plain base-objective runs until the first decay. ``stop_at_first_decay`` writes that shared
prefix once; ``prefix=`` starts a run from it, which gives the same result as training from scratch (every epoch's
randomness is seeded by (seed, epoch)) without repeating 75 epochs per method.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from pathlib import Path

import torch

from . import attacks, distributed
from .averaging import WeightAverage
from .awp import AdversarialWeightPerturbation
from .data import Prepared, make_batches, to_tensor
from .evaluate import fp32_eval
from .io import CheckpointError, ConfigError, SpecRobustError, atomic_torch_save, atomic_write_text, load_checkpoint
from .models import build_model, load_init
from .objectives import LOSSES, training_inputs
from .regularizers import add_smooth_kernel_gradient, fr_loss
from .spec import BRANCH_ONLY, RunSpec

CHECKPOINT_FORMAT = 1


class NonFiniteLoss(SpecRobustError):
    pass


def resolve_device(requested: str) -> torch.device:
    """``cpu``, ``cuda``/``cuda:N`` (which must exist: a GPU run never falls back to the CPU) or ``auto``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r} asked for, but no CUDA GPU is visible on this machine")
    return torch.device(requested)


def _precision_ctx(spec: RunSpec, device: torch.device):
    """fp32 (the papers) or bf16 autocast (opt-in speed mode; losses stay fp32, reported evaluations are fp32)."""
    if spec.precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _seed_epoch(spec: RunSpec, epoch: int):
    torch.manual_seed(spec.seed * 1_000_003 + epoch)


def build(spec: RunSpec, data: Prepared, device) -> torch.nn.Module:
    return build_model(spec.arch, data.num_classes, data.channels, data.size, data.mean, data.std,
                       **spec.arch_options).to(device)


def validate(model, x, y, spec: RunSpec, batch_size: int = 500) -> tuple[float, float]:
    """Clean and PGD-``val_steps`` accuracy (%) on the validation split, fp32 eval mode, fixed random start."""
    g = torch.Generator().manual_seed(spec.seed)
    attack = lambda m, xb, yb: attacks.pgd(m, xb, yb, spec.eps, spec.val_step_size, spec.val_steps,  # noqa: E731
                                           generator=g)
    with fp32_eval(model):  # sharded over the ranks of a data-parallel run, with the single-process result
        clean = distributed.correct_under(model, x, y, lambda m, xb, yb: xb, batch_size)
        robust = distributed.correct_under(model, x, y, attack, batch_size)
    return 100 * clean.float().mean().item(), 100 * robust.float().mean().item()


class Trainer:
    """All state of one run; ``state_dict`` is everything a resumed run needs (weights_only-loadable)."""

    def __init__(self, spec: RunSpec, data: Prepared, device, workers: int = 0):
        device = torch.device(device)
        self.spec, self.data, self.device, self.workers = spec, data, device, workers
        torch.manual_seed(spec.seed)  # the same initial weights whichever process builds the run
        self.model = build(spec, data, device)
        self.channels_last = spec.channels_last == "true" or (spec.channels_last == "auto" and device.type == "cuda")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model = distributed.sync_batchnorm(self.model, spec)  # several processes: global-batch statistics
        kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
        self.opt = torch.optim.SGD(self.model.parameters(), lr=spec.lr, momentum=spec.momentum,
                                   weight_decay=spec.weight_decay, **kw)
        self.loss_fn = LOSSES[spec.base]
        self.awp = AdversarialWeightPerturbation.build(self.model, spec.awp_gamma) if spec.awp else None
        if self.awp:
            self.awp.proxy_optim = distributed.average_gradients(self.awp.proxy_optim)
        self.autocast = _precision_ctx(spec, device)
        self.forward_model = self.model
        if spec.compile:
            try:
                self.forward_model = torch.compile(self.model)
            except Exception as err:  # noqa: BLE001 - compile is an optional speed-up with a clean fallback
                print(f"torch.compile unavailable ({err}); running eagerly", flush=True)
        self.attack_model = self.forward_model  # training attacks: per process, no gradient synchronisation
        self.forward_model = distributed.data_parallel(self.forward_model, spec)
        n_train = len(data.x_train) if spec.train_limit is None else min(spec.train_limit, len(data.x_train))
        self.batches = distributed.shard(make_batches(  # several processes: each trains on its rows
            data.x_train[:n_train], data.y_train[:n_train], spec.batch_size, spec.augment, device, spec.seed,
            drop_last=True, channels_last=self.channels_last, workers=workers))
        n_val = len(data.x_val) if spec.val_limit is None else min(spec.val_limit, len(data.x_val))
        self.x_val = to_tensor(data.x_val[:n_val], device)
        self.y_val = torch.as_tensor(data.y_val[:n_val], device=device)
        n_test = min(spec.test_curve_limit, len(data.x_test))  # training curves only, never model selection
        self.x_test = to_tensor(data.x_test[:n_test], device)
        self.y_test = torch.as_tensor(data.y_test[:n_test], device=device)
        self.epoch = 0
        self.wa: WeightAverage | None = None    # FR/WA teacher
        self.swa: WeightAverage | None = None   # SWA evaluation model
        self.best = {"epoch": -1, "score": -1.0, "val_pgd": -1.0, "val_clean": -1.0, "model": None}
        self.metrics: list[dict] = []

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "spec": self.spec.record(), "epoch": self.epoch,
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "wa": self.wa.state_dict() if self.wa else None, "swa": self.swa.state_dict() if self.swa else None,
                "best": self.best, "metrics": self.metrics,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}

    def load_state_dict(self, st: dict, branch: bool = False):
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.epoch, self.best, self.metrics = int(st["epoch"]), st["best"], list(st["metrics"])
        for name in ("wa", "swa"):
            if st.get(name) is not None and not branch:
                setattr(self, name, WeightAverage(self.model))
                getattr(self, name).load_state_dict(st[name])
        torch.set_rng_state(st["rng"]["torch"])
        if st["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["rng"]["cuda"])

    # ------------------------------------------------------------------------------------------- epoch
    def train_epoch(self, progress=None) -> dict:
        """One epoch; ``progress(step, n_steps, images, seconds)`` is called after every optimizer step."""
        spec, model = self.spec, self.model
        _seed_epoch(spec, self.epoch)
        lr = spec.lr_at(self.epoch)
        for group in self.opt.param_groups:
            group["lr"] = lr
        fr_on = spec.fr != "none" and self.epoch >= spec.first_decay
        if spec.fr == "wa" and fr_on and self.wa is None:
            self.wa = WeightAverage(model)  # W_wa starts as the weights at the first decay (k = 1)
            if spec.wa_bn == "reestimate":  # the student's running statistics are those of adversarial batches
                self._reestimate_bn(self.wa.model)
        model.train()
        total_loss = torch.zeros((), device=self.device)
        total_correct = torch.zeros((), device=self.device)
        total_fr = torch.zeros((), device=self.device)
        n, t0 = 0, time.time()
        awp_on = self.awp is not None and self.epoch >= spec.awp_warmup
        for step, (x, y) in enumerate(self.batches.epoch(self.epoch)):
            with self.autocast():
                x_adv = training_inputs(spec.base, self.attack_model, x, y, spec)  # on unperturbed weights
                if awp_on:
                    diff = self.awp.perturb(x_adv, y, lambda m, xa, yy: self.loss_fn(m, x, yy, xa, spec)[0])
                loss, logits_adv, logits_nat = self.loss_fn(self.forward_model, x, y, x_adv, spec)
                if fr_on:
                    if spec.fr == "wa":
                        with torch.no_grad():
                            teacher = self.wa.model(x)
                    else:
                        teacher = logits_nat if logits_nat is not None else self.forward_model(x)
                    # on the global batch: batch-2D FR mixes samples (all-gathered, gradients included)
                    reg = fr_loss(distributed.gather(teacher), distributed.gather(logits_adv), spec.fr_distance,
                                  spec.fr_fft)
                    loss = loss + spec.fr_lambda * reg
                    total_fr += reg.detach()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if spec.grad_clip is not None:  # the data term's gradient only; R's has its own per-slice clip
                torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
            if spec.sk:  # + lambda R(w): its gradient added after that clip (no DDP hook: identical on every rank)
                loss = loss.detach() + add_smooth_kernel_gradient(model, spec.sk_lambda, spec.sk_scope, spec.sk_clip,
                                                                  max_exponent=spec.sk_max_exponent)
            self.opt.step()
            if awp_on:
                self.awp.restore(diff)
            total_loss += loss.detach() * len(y)
            total_correct += (logits_adv.detach().argmax(1) == y).sum()
            n += len(y)
            if progress is not None:
                progress(step + 1, len(self.batches), n * distributed.world_size(), time.time() - t0)
        total_loss, total_correct, n = distributed.sum_over_ranks(total_loss, total_correct, n)
        distributed.sync_buffers(model, spec)  # unsynchronised BatchNorm: rank 0's statistics
        train_loss = total_loss.item() / max(n, 1)  # the one host sync of the epoch
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(f"{spec.name}: training loss is {train_loss} in epoch {self.epoch} (lr {lr}); "
                                f"lower train.lr or check the data")
        if not torch.stack([p.isfinite().all() for p in model.parameters()]).all():  # finite loss, NaN gradient
            raise NonFiniteLoss(f"{spec.name}: non-finite weights after epoch {self.epoch} (lr {lr}); "
                                f"lower train.lr or check the data")
        if spec.fr == "wa" and fr_on:
            self.wa.update(model)
            if spec.wa_bn == "reestimate":  # statistics of the averaged weights, as in SWA (Izmailov et al.)
                self._reestimate_bn(self.wa.model)
        seconds = time.time() - t0
        candidate = model
        if spec.swa and self.epoch >= spec.first_decay:
            candidate = self.swa_model()
        val_clean, val_pgd = validate(candidate, self.x_val, self.y_val, spec)
        row = {"epoch": self.epoch, "lr": float(f"{lr:.12g}"), "train_loss": round(train_loss, 6),
               "train_adv_acc": round(100 * total_correct.item() / max(n, 1), 4),
               "fr_loss": round(total_fr.item() / max(len(self.batches), 1), 6) if fr_on else "",
               "val_clean": round(val_clean, 4), f"val_pgd{spec.val_steps}": round(val_pgd, 4),
               **self._test_curve(candidate), "epoch_seconds": round(seconds, 3),
               "images_per_second": round(n / max(seconds, 1e-9), 1)}
        score = val_pgd if spec.adversarial else val_clean  # natural training: best clean accuracy
        if spec.swa and self.epoch == spec.first_decay:
            self.best["score"] = -1.0  # an SWA run reports one of its SWA models
        if score > self.best["score"]:
            self.best = {"epoch": self.epoch, "score": score, "val_pgd": val_pgd, "val_clean": val_clean,
                         "model": {k: v.detach().cpu().clone() for k, v in candidate.state_dict().items()}}
        self.metrics.append(row)
        self.epoch += 1
        return row

    def _test_curve(self, model) -> dict:
        """Clean and PGD accuracy on the first ``test_curve_limit`` test images, for the training-curve figure
        (workshop Figure 3); its own generator, so the training RNG stream is untouched."""
        if not len(self.x_test):
            return {}
        clean, pgd = validate(model, self.x_test, self.y_test, self.spec)
        return {"test_clean": round(clean, 4), f"test_pgd{self.spec.val_steps}": round(pgd, 4)}

    def _plain_batches(self):
        """The training images without augmentation, in order: the BatchNorm re-estimation pass (SWA, FR/WA)."""
        return distributed.shard(make_batches(self.batches.x, self.batches.y, self.spec.batch_size, "none",
                                              self.device, self.spec.seed, drop_last=False,
                                              channels_last=self.channels_last, workers=self.workers))

    def _reestimate_bn(self, model: torch.nn.Module) -> None:
        was_training = model.training
        torch.optim.swa_utils.update_bn((x for x, _ in self._plain_batches().epoch(self.epoch)), model)
        distributed.sync_buffers(model, self.spec)
        model.train(was_training)

    def swa_model(self) -> torch.nn.Module:
        """Fold this epoch's weights into the SWA average, then re-estimate its BatchNorm statistics with one
        pass over the clean training images (the workshop code's ``bn_update``; ``swa_utils.update_bn``)."""
        if self.swa is None:
            self.swa = WeightAverage(self.model)
        else:
            self.swa.update(self.model)
        bn_model = copy.deepcopy(self.swa.model)
        self._reestimate_bn(bn_model)
        return bn_model.eval()


def _meta(spec: RunSpec, data: Prepared, best: dict) -> dict:
    """What rebuilds the model and names it. ``train_eps`` is informative only: every evaluation takes its eps from
    its threat model, never from the checkpoint."""
    return {"arch": spec.arch, "arch_options": spec.arch_options, "num_classes": data.num_classes,
            "in_channels": data.channels, "image_size": data.size, "mean": list(data.mean), "std": list(data.std),
            "dataset": spec.dataset, "method": f"{spec.method}/{spec.point}" if spec.point else spec.method,
            "seed": spec.seed, "train_eps": spec.eps,
            "epoch": best["epoch"], "val_pgd": best["val_pgd"], "val_clean": best["val_clean"]}


def write_metrics(rows: list[dict], path):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Log lines inside an epoch (steps done, images/s, ETA of the epoch and of the run) at most every
    ``interval`` seconds and at most ten per epoch: a rate that suits a log file."""

    def __init__(self, log, epoch: int, end: int, seconds_per_epoch: float | None, interval: float = 60.0):
        self.log, self.epoch, self.end, self.interval = log, epoch, end, interval
        self.per_epoch, self.last, self.tenth = seconds_per_epoch, time.time(), 0

    def __call__(self, step: int, n_steps: int, images: int, seconds: float):
        tenth = 10 * step // max(n_steps, 1)
        if tenth <= self.tenth or time.time() - self.last < self.interval or step == n_steps:
            return
        self.tenth, self.last = tenth, time.time()
        left = seconds / step * (n_steps - step)
        rest = (self.end - self.epoch - 1) * (self.per_epoch or seconds / step * n_steps)
        self.log(f"epoch {self.epoch}: {step}/{n_steps} steps, {images / max(seconds, 1e-9):.1f} images/s, "
                 f"epoch ETA {_duration(left)}, run ETA {_duration(left + rest)}")


def _tensorboard(spec: RunSpec, stop_at_first_decay: bool):
    """Per-epoch metrics as TensorBoard scalars when SPECROBUST_TENSORBOARD names a folder (off by default; not a
    config key, so switching it never reruns a job)."""
    folder = os.environ.get("SPECROBUST_TENSORBOARD")
    if not folder:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ConfigError(f"SPECROBUST_TENSORBOARD is set but TensorBoard is not installed ({err})") from None
    return SummaryWriter(str(Path(folder) / spec.name / ("prefix" if stop_at_first_decay else "run")))


def train(spec: RunSpec, data: Prepared, out_model, out_metrics, workdir, prefix=None, stop_at_first_decay=False,
          log=print, init_path=None, workers: int = 0, device="cpu", progress_interval: float = 60.0) -> dict:
    """Train (or resume) one run; writes ``out_metrics`` after every epoch and ``out_model`` at the end.

    ``workdir/last.pt`` is rewritten atomically after every epoch; if present and written under the same record, the
    run resumes from it. With ``stop_at_first_decay`` the run ends after epoch ``first_decay - 1`` and ``out_model``
    is the full training state (the prefix from which FR/FR-WA/plain continuations branch). ``init_path`` is the
    local file of ``spec.init`` (the downloaded torchvision weights when it is "torchvision"); ``workers`` loader
    processes decode streamed data sets (the batches do not depend on their number).

    With ``spec.processes`` > 1 this call starts that many processes (one GPU each; gloo on the CPU), each running
    this function on its share of every global batch (:mod:`specrobust.distributed`); rank 0 writes the files.
    """
    if spec.processes > 1 and not distributed.active():
        distributed.check(spec, device)
        return distributed.launch(train, (spec, data, out_model, out_metrics, workdir),
                                  dict(prefix=prefix, stop_at_first_decay=stop_at_first_decay, init_path=init_path,
                                       workers=workers, progress_interval=progress_interval),
                                  processes=spec.processes, device=device, log=log, workdir=workdir)
    writes = distributed.is_main()  # one writer; the other ranks train in lockstep
    device = torch.device(device)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    trainer = Trainer(spec, data, device, workers)
    last = Path(workdir) / "last.pt"
    end = spec.first_decay if stop_at_first_decay else spec.epochs
    resumed = False
    if last.exists():
        try:
            st = load_checkpoint(last)
            if st.get("format") == CHECKPOINT_FORMAT and st["spec"] == spec.record():
                trainer.load_state_dict(st)
                resumed = True
                log(f"resuming from {last} at epoch {trainer.epoch}")
            else:
                log(f"ignoring {last}: written by a different configuration")
        except CheckpointError as err:
            log(f"ignoring unusable checkpoint: {err}")
    if not resumed and prefix is not None:
        st = load_checkpoint(prefix)
        theirs, mine = st["spec"], spec.prefix_key()
        bad = sorted(k for k in set(mine) | set(theirs) if k not in BRANCH_ONLY and mine.get(k) != theirs.get(k))
        if bad:
            raise CheckpointError(f"prefix {prefix} was trained with different settings ({', '.join(bad)}); "
                                  f"delete it so it is rebuilt")
        trainer.load_state_dict(st, branch=True)
        log(f"branching {spec.name} from {prefix} at epoch {trainer.epoch}")
    if not resumed and prefix is None and spec.init:  # pretrained start (init_path: the file behind "torchvision")
        source = init_path or spec.init
        load_init(trainer.model, load_checkpoint(source), source, log)
    log(f"{spec.name} on {device}: {len(trainer.batches.x)} train, {len(trainer.x_val)} val images, "
        f"epochs {trainer.epoch}..{end - 1}, {len(trainer.batches)} steps per epoch")
    board = _tensorboard(spec, stop_at_first_decay) if writes else None
    t_run, start = time.time(), trainer.epoch
    while trainer.epoch < end:
        done = trainer.epoch - start
        per_epoch = (time.time() - t_run) / done if done else None
        row = trainer.train_epoch(Progress(log, trainer.epoch, end, per_epoch, progress_interval))
        if writes:
            atomic_torch_save(trainer.state_dict(), last)
            write_metrics(trainer.metrics, out_metrics)
        if board:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    board.add_scalar(k, v, row["epoch"])
            board.flush()
        eta = (time.time() - t_run) / (trainer.epoch - start) * (end - trainer.epoch)
        log(" ".join(f"{k}={v}" for k, v in row.items()) + f" run_eta={_duration(eta)}")
    if not writes:
        return trainer.best
    if stop_at_first_decay:
        atomic_torch_save(trainer.state_dict(), out_model)
    else:
        best = trainer.best
        atomic_torch_save({"model": best["model"], "meta": _meta(spec, data, best), "spec": spec.record()},
                          out_model)
        log(f"selected epoch {best['epoch']} (validation clean {best['val_clean']:.2f}%, "
            f"PGD-{spec.val_steps} {best['val_pgd']:.2f}%)")
    write_metrics(trainer.metrics, out_metrics)
    last.unlink(missing_ok=True)
    return trainer.best
