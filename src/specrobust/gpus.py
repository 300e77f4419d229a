"""Pin a job to one free GPU on a multi-GPU workstation (Snakemake limits how many GPU jobs run, not which GPU).

Each job takes an exclusive lock on ``<tmp>/specrobust-gpu-<i>.lock`` for the first free i and sets
CUDA_VISIBLE_DEVICES=i before CUDA is initialised; the lock is released when the process ends. Under SLURM (or any
launcher that already sets CUDA_VISIBLE_DEVICES) nothing is changed.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

_held = []  # keep the locked files open for the life of the process


def claim_gpu(n_gpus: int, lock_dir: str | None = None) -> int | None:
    if "CUDA_VISIBLE_DEVICES" in os.environ or n_gpus <= 0:
        return None
    folder = Path(lock_dir or tempfile.gettempdir())
    for i in range(n_gpus):
        f = open(folder / f"specrobust-gpu-{i}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _held.append(f)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(i)
        return i
    raise RuntimeError(f"all {n_gpus} GPUs are claimed by other jobs; run snakemake with --resources gpu={n_gpus}")
