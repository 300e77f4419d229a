"""The frame of every rule script: log to the rule's log file and stderr (the job's record first), set threads, turn
known errors into one line (no traceback), and never leave an output that Snakemake could take for finished.

A script sees its input, output, params (``params.job``: the record from :mod:`specrobust.jobs`), log, threads and
resources, nothing else. The device comes from the resources: a job that asks for a GPU runs on one or stops.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import SpecRobustError


class NoGPU(SpecRobustError):
    pass


def device(sm) -> str:
    """``cuda`` for a job whose resources ask for a GPU (and then one must be visible), else ``cpu``."""
    if int(getattr(sm.resources, "gpu", 0) or 0) == 0:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise NoGPU(f"this job asks for a GPU but none is visible on host {socket.gethostname()} "
                    f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); it will not fall "
                    f"back to the CPU. Run on a GPU node, or set train.device: cpu")
    return "cuda"


def _claim_local_gpu(sm, log) -> None:
    """On a workstation (profiles/local-gpu), pin this job to as many free GPUs of the visible ones as it asks for."""
    n = int(getattr(sm.resources, "gpu", 0) or 0)
    if n == 0 or os.environ.get("SLURM_JOB_ID"):
        return
    from .gpus import claim_gpus, visible_gpus

    gpus = claim_gpus(visible_gpus(), n)
    if gpus:
        log(f"pinned to GPU {','.join(gpus)} (CUDA_VISIBLE_DEVICES)")


def run(snakemake, main) -> None:
    log_path = Path(snakemake.log[0]) if snakemake.log else None
    log_file = open(log_path, "a", buffering=1) if log_path else None

    def log(msg: str):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        if log_file:
            print(line, file=log_file)

    try:
        import specrobust

        log(f"core {Path(specrobust.__file__).parent}" + (" (a copy of the workflow)"
                                                           if getattr(specrobust, "WORKFLOW_COPY", False) else ""))
        if os.environ.get("SLURM_JOB_ID"):
            log(f"SLURM job {os.environ['SLURM_JOB_ID']} on {socket.gethostname()}")
        if "job" in snakemake.params.keys():
            log("job " + json.dumps(snakemake.params.job, sort_keys=True, default=str))
        _claim_local_gpu(snakemake, log)
        try:
            import torch
        except ImportError:  # the analysis environment (tables, reports) has no torch
            torch = None
        if torch is not None:
            torch.set_num_threads(max(1, int(snakemake.threads)))
        main(snakemake, log)
    except SpecRobustError as err:
        log(f"ERROR: {err}")
        sys.exit(1)
    finally:
        if log_file:
            log_file.close()
