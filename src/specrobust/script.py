"""The frame of every rule script: log to the rule's log file and stderr, set threads, turn known errors into
one line (no traceback), and never leave an output that Snakemake could take for finished."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import SpecRobustError


def evaluation(sm) -> dict:
    """The job's ``evaluation`` section with its data set's and method's overrides (batch size, seed, eps)."""
    from .config import evaluation_section

    return evaluation_section(sm.config, sm.wildcards.dataset, sm.wildcards.get("method"))


def run(snakemake, main) -> None:
    log_path = Path(snakemake.log[0]) if snakemake.log else None
    log_file = open(log_path, "a", buffering=1) if log_path else None

    def log(msg: str):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        if log_file:
            print(line, file=log_file)

    if int(getattr(snakemake.resources, "gpu", 0) or 0) > 0:
        import subprocess

        from .gpus import claim_gpu
        try:  # count GPUs without initialising CUDA in this process
            n = len(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.splitlines())
        except OSError:
            n = 0
        gpu = claim_gpu(n)
        if gpu is not None:
            log(f"pinned to GPU {gpu} (CUDA_VISIBLE_DEVICES)")

    try:
        import torch
    except ImportError:  # the analysis environment (tables, reports) has no torch
        torch = None
    if torch is not None:
        torch.set_num_threads(max(1, int(snakemake.threads)))
    try:
        main(snakemake, log)
    except SpecRobustError as err:
        log(f"ERROR: {err}")
        sys.exit(1)
    finally:
        if log_file:
            log_file.close()
