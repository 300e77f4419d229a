"""Data-parallel training on one node (``train.processes`` > 1) that keeps the papers' single-GPU semantics.

The papers trained every run on one GPU with one global batch. With N processes (one GPU each; gloo on the CPU):

- Launcher: :func:`specrobust.train.train` calls :func:`launch`, which starts N copies of the same call through
  PyTorch's elastic launcher (``elastic_launch``, what ``torchrun --standalone`` runs), as ``python -c`` subprocesses
  (no re-import of the caller's main script). On CUDA each process sees only its own GPU (``virtual_local_rank``:
  CUDA_VISIBLE_DEVICES is narrowed to one entry of the job's list), so "cuda" means that GPU. Rank 0's log lines
  reach the caller's ``log``; its return value is the caller's.
- Sharding: every rank iterates the same global batches (same seeded order, crops and flips) and keeps a contiguous
  chunk, rank r rows ``[r B/N, (r+1) B/N)`` (:class:`ShardedBatches`), so gathering the chunks in rank order restores
  the global batch. ``batch_size % processes == 0`` is required (:func:`check`).
- Gradients: DistributedDataParallel averages the gradients of the per-rank losses. Every cross-rank coupling (the
  batch-2D FR loss on the all-gathered logits, synchronised BatchNorm) is differentiable with SUM backward, so the
  average is the gradient of the single-process loss (checked numerically in tests/test_distributed.py).
  Training attacks run on the bare model (no gradient sync); DDP wraps the model for the loss only.
- BatchNorm: with ``train.sync_bn`` (default) training-mode statistics are over the global batch: the papers trained
  each run on one GPU, so their BatchNorm normalised every batch of 128 with its own statistics; per-shard statistics
  (32 images on 4 GPUs) would be a noisier, different objective and leave rank 0's running statistics only.
  ``torch.nn.SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm2d` on the CPU (torch's refuses CPU tensors). Without
  it, each rank normalises its shard and rank 0's running statistics are broadcast (:func:`sync_buffers`).
- Randomness: all ranks share one seed, and every draw of a training step (PGD's uniform start, TRADES' Gaussian
  start, validation PGD's start) is made for the whole global batch, of which each rank keeps its rows
  (:func:`like_global`): the streams advance in lockstep on every rank and each image gets its single-process noise.
- AWP: the proxy's gradients are averaged over the ranks before its step (:func:`average_gradients`), so every rank
  applies the same weight perturbation. The FR/WA teacher and SWA average identical weights on every rank; their
  BatchNorm re-estimation runs sharded with synchronised statistics.
- Validation and the test curve: each validation batch is sharded, its PGD noise drawn for the whole batch, and the
  per-example results all-gathered (:func:`correct_under`): every rank takes the single-process decision.
- Checkpoints: rank 0 writes every file; all ranks load the same ``last.pt``. The ranks' states (weights, buffers,
  RNG) are identical at every epoch end, so rank 0's checkpoint restores every rank.
- Faults: a rank that raises or dies makes the launcher stop the others (SIGTERM, then SIGKILL) and raise
  :class:`RankFailed` with one line naming the rank and its error; workers die with their launcher (PDEATHSIG).

Same semantics, not the same bits: N processes add the same numbers in another order (half-batch sums and an
all-reduce), which moves float32 results by ~1e-6 relative; sign-gradient PGD and ReLUs can amplify that over many
steps, as any change of reduction order (another GPU, another cuDNN algorithm) does. In float64 the 1- and
2-process runs agree to ~1e-15 (tests/test_distributed.py). Two N-process runs, resumed or not, are bitwise equal on
the CPU.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

from .errors import ConfigError, SpecRobustError


class RankFailed(SpecRobustError):
    pass


# ================================================================================================== the process group
def active() -> bool:
    """Inside a data-parallel run with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """The rank that writes files and logs (always true in a single-process run)."""
    return rank() == 0


def check(spec, device) -> None:
    """The one-line errors of a data-parallel configuration."""
    n = spec.processes
    if n < 1:
        raise ConfigError(f"train.processes must be at least 1, not {n}")
    if spec.batch_size % n:
        raise ConfigError(f"train.batch_size {spec.batch_size} is not divisible by train.processes {n}: each process "
                          f"trains on an equal share of the global batch")
    if torch.device(device).type == "cuda" and torch.cuda.device_count() < n:
        raise ConfigError(f"train.processes is {n} but this job sees {torch.cuda.device_count()} GPU(s) "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    if torch.device(device).type not in ("cpu", "cuda"):
        raise ConfigError(f"train.processes > 1 runs on cuda (NCCL) or cpu (gloo), not on {device}")


# ================================================================================================== sharding
def rows(n: int) -> slice:
    """This rank's contiguous rows of a global batch of n (torch.tensor_split's sizes: the first n % N get one more)."""
    size, extra = divmod(n, world_size())
    r = rank()
    start = r * size + min(r, extra)
    return slice(start, start + size + (r < extra))


_GLOBAL: tuple[int, slice] | None = None   # (global batch size, this rank's rows) while a shard is being processed


@contextlib.contextmanager
def _global_batch(n: int):
    global _GLOBAL
    mine = rows(n)
    _GLOBAL = (n, mine)
    try:
        yield mine
    finally:
        _GLOBAL = None


def like_global(draw, x: torch.Tensor) -> torch.Tensor:
    """``draw(t)`` (a random tensor shaped like ``t``: ``torch.randn_like``, or a ``torch.rand(t.shape, ...)``) for the
    batch ``x``. Outside a sharded batch that is ``draw(x)``. Inside one, ``x`` is this rank's rows of a global batch:
    the noise of the whole global batch is drawn, from the same seeded stream on every rank, and this rank's rows are
    returned, so the stream advances as in one process and every image gets the noise a single-process run gives it.
    """
    if _GLOBAL is None:
        return draw(x)
    n, mine = _GLOBAL
    if len(x) != mine.stop - mine.start:
        raise RuntimeError(f"random draw for {len(x)} rows inside a shard of {mine.stop - mine.start} rows")
    fmt = torch.contiguous_format
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        fmt = torch.channels_last
    return draw(torch.empty((n, *x.shape[1:]), dtype=x.dtype, device=x.device, memory_format=fmt))[mine]


class ShardedBatches:
    """A batch iterator (``DeviceBatches``, ``StreamBatches``) whose ``epoch`` yields this rank's rows of each global
    batch, with :func:`like_global` told about the global batch while the caller processes it. Every rank builds the
    whole global batch (the augmentation is cheap next to PGD) and keeps its chunk; other attributes pass through."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getattr__(self, name):
        if name == "batches":   # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.batches, name)

    def epoch(self, epoch: int):
        for x, y in self.batches.epoch(epoch):
            with _global_batch(len(x)) as mine:
                yield x[mine], y[mine]


def shard(batches):
    return ShardedBatches(batches) if active() else batches


# ================================================================================================== collectives
def _quiet(fn, *args):
    """torch.distributed.nn.functional's autograd collectives warn (FutureWarning) that they are deprecated in favour
    of the functional collectives, which need reduce-scatter, which gloo lacks; they are the supported API on both."""
    import torch.distributed.nn.functional as dnn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(dnn, fn)(*args)


def gather(t: torch.Tensor) -> torch.Tensor:
    """The rows of every rank in rank order (the global batch), differentiable: the backward pass sums the gradients
    of every rank's copy into the owner's rows, so under DDP's averaging the gradient is the single-process one."""
    if not active():
        return t
    return torch.cat(_quiet("all_gather", t))


def sum_over_ranks(*values):
    """Tensors and numbers summed over the ranks (returned as they came in a single-process run)."""
    if not active():
        return values
    device = next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device) for v in values])
    dist.all_reduce(t)
    return tuple(t[i].to(v.dtype) if isinstance(v, torch.Tensor) else type(v)(t[i].item())
                 for i, v in enumerate(values))


def correct_under(model, x, y, attack, batch_size: int) -> torch.Tensor:
    """:func:`specrobust.evaluate.correct_under`, sharded: each batch of ``batch_size`` is split over the ranks (the
    attack's noise drawn for the whole batch, :func:`like_global`), the per-example results are all-gathered. Returns
    the flags of all of ``x`` on every rank, equal to the single-process ones."""
    from .evaluate import correct_under as single
    if not active():
        return single(model, x, y, attack, batch_size)
    mine = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        with _global_batch(len(xb)) as part:
            mine.append(single(model, xb[part], yb[part], attack, batch_size))
    everyone = [None] * world_size()
    dist.all_gather_object(everyone, mine)
    flags = [theirs[b] for b in range(len(mine)) for theirs in everyone]
    return torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool)


# ================================================================================================== model and optimizer
class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d with training-mode statistics over the global batch (all ranks), for gloo on the CPU, where
    ``torch.nn.SyncBatchNorm`` refuses to run. Same state and running-statistics update as BatchNorm2d (unbiased
    running variance over the global count); the sums are all-reduced with SUM backward, so gradients are exact."""

    def forward(self, x):
        if not (self.training and active()):
            return super().forward(x)
        dims, shape = (0, 2, 3), (1, -1, 1, 1)
        n = torch.tensor([x.numel() // max(x.shape[1], 1)], dtype=x.dtype, device=x.device)
        dist.all_reduce(n)
        if n.item() <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {int(n.item())} in all")
        mean = _quiet("all_reduce", x.sum(dims)) / n
        centred = x - mean.view(shape)
        var = _quiet("all_reduce", centred.pow(2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(mean, alpha=f)
                self.running_var.mul_(1 - f).add_(var * (n / (n - 1)), alpha=f)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def _global_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm2d of ``module`` replaced by a GlobalBatchNorm2d holding the same parameters and buffers."""
    if type(module) is torch.nn.BatchNorm2d:
        new = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        for name, value in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            setattr(new, name, value)
        return new.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, _global_batchnorm(child))
    return module


def sync_batchnorm(model: torch.nn.Module, spec) -> torch.nn.Module:
    """With ``spec.sync_bn`` under several processes: BatchNorm statistics over the global batch (the papers' one GPU
    saw the whole batch). The parameters and buffers are the same tensors, so state-dict keys do not change."""
    if not (active() and spec.sync_bn):
        return model
    if next(model.parameters()).is_cuda:
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _global_batchnorm(model)


def data_parallel(model: torch.nn.Module, spec) -> torch.nn.Module:
    """DistributedDataParallel for the training loss (attacks run on the bare model: they need no gradient sync).
    With synchronised BatchNorm the buffers are identical on every rank, so DDP need not broadcast them."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=not spec.sync_bn,
                                   gradient_as_bucket_view=False)


def sync_buffers(model: torch.nn.Module, spec) -> None:
    """Without synchronised BatchNorm, rank 0's running statistics for every rank (as DDP's broadcast_buffers does
    before each forward), so the model evaluated, averaged and saved is one model. A no-op otherwise."""
    if active() and not spec.sync_bn:
        for b in model.buffers():
            dist.broadcast(b, 0)


class _AveragedSteps:
    """An optimizer whose ``step`` first averages the gradients over the ranks (one all-reduce)."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    def zero_grad(self, set_to_none: bool = True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self):
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= world_size()
            for g, avg in zip(grads, flat.split([g.numel() for g in grads])):
                g.copy_(avg.view_as(g))
        self.optimizer.step()


def average_gradients(optimizer):
    """AWP's proxy optimizer, averaging the proxy gradients over the ranks: the gradient of the global-batch loss,
    so every rank finds the single-process weight perturbation."""
    return _AveragedSteps(optimizer) if active() else optimizer


# ================================================================================================== launcher
JOB_DIR = "ranks"   # under the run's workdir: the job, rank 0's log and result, the ranks' error reports
_BOOT = ("import sys, json; sys.path[:0] = json.load(open(sys.argv[1] + '/path.json')); "
         "from specrobust.distributed import _worker_main; _worker_main()")


class _Forward(threading.Thread):
    """Forwards the complete lines rank 0 appends to ``path`` to ``log`` while the ranks run."""

    def __init__(self, path: Path, log):
        super().__init__(daemon=True)
        self.path, self.log, self.done, self.pos = path, log, threading.Event(), 0

    def drain(self):
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.pos += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            self.log(line)

    def run(self):
        while not self.done.wait(0.2):
            self.drain()

    def stop(self):
        self.done.set()
        self.join()
        self.drain()


def launch(fn, args: tuple, kwargs: dict, *, processes: int, device, log, workdir):
    """Runs ``fn(*args, **kwargs, log=..., device=...)`` in ``processes`` processes (one per GPU on CUDA) and returns
    rank 0's result. ``fn`` and its arguments are pickled into ``workdir/ranks`` (fn by reference: it must be
    importable). Raises :class:`RankFailed` when a rank fails; the others are stopped."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if getattr(fn, "__module__", None) == "__main__":
        raise ValueError(f"{fn.__name__} is defined in __main__; the ranks import it, so it must live in a module")
    device = str(device)
    jobdir = Path(workdir) / JOB_DIR
    shutil.rmtree(jobdir, ignore_errors=True)   # a killed launcher's leftovers
    jobdir.mkdir(parents=True)
    (jobdir / "path.json").write_text(json.dumps([p for p in sys.path if p]))
    threads = max(1, torch.get_num_threads() // processes)
    with open(jobdir / "job.pkl", "wb") as f:
        pickle.dump({"fn": fn, "args": args, "kwargs": kwargs, "device": device, "threads": threads}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"specrobust-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          logs_specs=DefaultLogsSpecs(log_dir=str(jobdir / "elastic")),
                          virtual_local_rank=torch.device(device).type == "cuda", shutdown_timeout=10)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)}
    forward = _Forward(jobdir / "log.txt", log)
    forward.start()
    try:
        elastic_launch(config, sys.executable)("-c", _BOOT, str(jobdir), str(os.getpid()))
    except ChildFailedError as err:
        raise RankFailed(_failure(err, jobdir, processes)) from None
    finally:
        forward.stop()
        if threading.current_thread() is threading.main_thread():  # the elastic agent installs its own
            for s, h in handlers.items():
                signal.signal(s, h)
    with open(jobdir / "result.pkl", "rb") as f:
        result = pickle.load(f)
    shutil.rmtree(jobdir, ignore_errors=True)
    return result


def _failure(err, jobdir: Path, processes: int) -> str:
    """One line naming the root cause: a rank that died without a report (killed, out of memory, crashed; the
    others then fail in their next collective), else the rank that reported an exception first. The agent lists
    the ranks it stopped with SIGTERM among the failures too; they are not the cause while another rank is."""
    reports = {r["rank"]: r for r in (json.loads(p.read_text()) for p in jobdir.glob("error.*.json"))}  # atomic
    died = sorted(r for r in err.failures if r not in reports)
    stopped = [r for r in died if err.failures[r].exitcode == -signal.SIGTERM]
    if len(stopped) < len(err.failures):
        died = [r for r in died if r not in stopped]
    if died:
        failure = err.failures[died[0]]
        why = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        return f"rank {died[0]} of {processes} died ({why}); the other ranks were stopped"
    if not reports:
        return f"the {processes} ranks failed without a report (see {jobdir})"
    r = min(reports.values(), key=lambda r: r["time"])
    return f"rank {r['rank']} of {processes} failed: {r['type']}: {r['message']}".replace("\n", " ")


def _die_with_parent(parent: int) -> None:
    """SIGKILL this worker when its launcher dies (a killed job leaves no rank running on)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _worker_main() -> None:
    jobdir, parent = Path(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    r = int(os.environ["RANK"])

    def log(msg: str):
        if r == 0:
            with open(jobdir / "log.txt", "a") as f:
                f.write(str(msg).replace("\n", " ") + "\n")

    try:
        with open(jobdir / "job.pkl", "rb") as f:
            job = pickle.load(f)
        torch.set_num_threads(job["threads"])
        if torch.device(job["device"]).type == "cuda":
            torch.cuda.set_device(0)   # the one GPU this rank sees
            dist.init_process_group("nccl", device_id=torch.device("cuda", 0))
        else:
            dist.init_process_group("gloo")
        result = job["fn"](*job["args"], **job["kwargs"], log=log, device=job["device"])
        if r == 0:
            with open(jobdir / ".result.tmp", "wb") as f:
                pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(jobdir / ".result.tmp", jobdir / "result.pkl")
    except BaseException as err:  # noqa: BLE001 - reported to the launcher, then this rank exits
        message = str(err).splitlines()[0] if str(err) else ""
        report = {"rank": r, "time": time.time(), "type": type(err).__name__, "message": message}
        (jobdir / f".error.{r}.tmp").write_text(json.dumps(report))   # whole or absent: the launcher may stop
        os.replace(jobdir / f".error.{r}.tmp", jobdir / f"error.{r}.json")   # this rank at any moment
        if not isinstance(err, SpecRobustError):
            traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)   # no teardown: the other ranks may be blocked in a collective
    dist.destroy_process_group()
