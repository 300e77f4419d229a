"""Pin a job to one free GPU on a multi-GPU workstation (Snakemake limits how many GPU jobs run, not which GPU).

Each job takes an exclusive lock on ``<tmp>/specrobust-gpu-<id>.lock`` for the first free GPU among those the user
made visible (``CUDA_VISIBLE_DEVICES=2,3`` -> GPUs 2 and 3; unset -> every GPU ``nvidia-smi`` lists) and sets
``CUDA_VISIBLE_DEVICES`` to it before CUDA is initialised; the lock is released when the process ends. Under SLURM the
scheduler already assigns the GPU, and nothing is changed.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

_held = []  # keep the locked files open for the life of the process


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU nvidia-smi lists (without
    initialising CUDA here)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


def claim_gpus(gpus: list[str], n: int = 1, lock_dir: str | None = None) -> list[str]:
    """Lock the first ``n`` free GPUs of ``gpus`` and make them the only visible ones; [] when there is no GPU."""
    if not gpus:
        return []
    folder = Path(lock_dir or tempfile.gettempdir())
    got = []
    for gpu in gpus:
        f = open(folder / f"specrobust-gpu-{gpu}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _held.append(f)
        got.append(gpu)
        if len(got) == n:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(got)
            return got
    raise RuntimeError(f"{n} free GPU(s) needed but {len(got)} of {','.join(gpus)} are free; run snakemake with "
                       f"--resources gpu={len(gpus)}")


def claim_gpu(gpus: list[str], lock_dir: str | None = None) -> str | None:
    """Lock the first free GPU of ``gpus`` and make it the only visible one; None when there is no GPU."""
    got = claim_gpus(gpus, 1, lock_dir)
    return got[0] if got else None
