"""A real single-node SLURM cluster for tests: the session fixture ``slurm_cluster`` and helpers.

Use it in a test module with::

    import pytest
    from slurm_cluster import slurm_cluster  # noqa: F401  (the fixture)

    pytestmark = [pytest.mark.slow, pytest.mark.slurm]

    def test_x(slurm_cluster, tmp_path):
        job = slurm_cluster.sbatch("echo $CUDA_VISIBLE_DEVICES", partition="gpu", gpus=1)
        assert job.state == "COMPLETED" and job.output.strip() == "0"
        proc = slurm_cluster.snakemake(tmp_path, "--default-resources", "slurm_partition=cpu")
        assert proc.returncode == 0, proc.stdout

The fixture runs ``tests/slurm/cluster.sh install`` and ``start`` once per session (apt-get installs Debian's
slurm-wlm and munge the first time) and ``stop`` at the end, unless the cluster was already running before the
session (then it is left running). It skips, with the reason, where the cluster cannot run: not Linux, not
root, not Debian, no apt-get, a site SLURM already configured in /etc/slurm, SPECROBUST_SLURM_TESTS=0, or the
packages cannot be installed (no package mirror). While the fixture is active, ``SLURM_CONF`` points at the
cluster's config (and ``/etc/slurm/slurm.conf`` links to it, see cluster.sh).

The node has partitions ``cpu`` (default) and ``gpu`` and advertises one GPU that does not exist
(``Gres=gpu:1``, a stand-in device file): a job asking for it with ``--gpus=1``/``--gres=gpu:1`` (Snakemake:
``resources: gpu=1``) is scheduled and gets the environment in ``GPU_ENV``, but no CUDA device is usable
(``torch.cuda.is_available()`` is False where the host has no NVIDIA driver). That is the "GPU asked for, none
visible" case a GPU job must fail fast on; ``sbatch`` and ``snakemake`` below run such jobs for real.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "tests" / "slurm" / "cluster.sh"
CLUSTER_DIR = Path(os.environ.get("SPECROBUST_SLURM_DIR", "/tmp/specrobust-slurm"))
SLURM_CONF = CLUSTER_DIR / "etc" / "slurm.conf"

# What SLURM 22.05 puts into the environment of a job that asked for the node's one (non-existent) GPU, by the
# kind of stand-in device file gres.conf names (cluster.sh, $SPECROBUST_SLURM_GPU_DEVICE):
# - "chardev" (default): the same as on a real one-GPU node. The batch script (`sbatch --gpus=1` or
#   `--gres=gpu:1`) gets SLURM_JOB_GPUS=0 (and SLURM_GPUS=1 for --gpus); a Snakemake rule's shell runs in the
#   jobstep executor's `srun` step, which has SLURM_STEP_GPUS=0 instead and no SLURM_JOB_GPUS/SLURM_GPUS.
# - "file" (where mknod is not allowed): the GPU is counted but has no device, so no CUDA_VISIBLE_DEVICES,
#   SLURM_JOB_GPUS or GPU_DEVICE_ORDINAL -- only SLURM_GPUS_ON_NODE=1.
# (Also ZE_AFFINITY_MASK=0 with chardev.) A CPU job on the same node gets none of these variables.
GPU_ENV = {
    "chardev": {
        "batch": {"CUDA_VISIBLE_DEVICES": "0", "GPU_DEVICE_ORDINAL": "0", "ROCR_VISIBLE_DEVICES": "0",
                  "SLURM_GPUS_ON_NODE": "1", "SLURM_JOB_GPUS": "0"},
        "step": {"CUDA_VISIBLE_DEVICES": "0", "GPU_DEVICE_ORDINAL": "0", "ROCR_VISIBLE_DEVICES": "0",
                 "SLURM_GPUS_ON_NODE": "1", "SLURM_STEP_GPUS": "0"},
    },
    "file": {"batch": {"SLURM_GPUS_ON_NODE": "1"}, "step": {"SLURM_GPUS_ON_NODE": "1"}},
}
GPU_VARS = ("CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "SLURM_GPUS_ON_NODE",
            "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")

# Snakemake options for the SLURM executor on this cluster (plugin snakemake-executor-plugin-slurm 2.8):
# no accounting database, so job status must come from squeue (the plugin's default is sacct whenever the
# sacct binary exists, and with accounting off every sacct query fails: the run then waits forever; MinJobAge=600
# in slurm.conf keeps finished jobs visible; the plugin switches to sacct when MinJobAge < 3 x the initial
# status-check interval); the first
# status check 5 s after submission (the plugin then waits 10 s longer after each check that finds no job
# finished: 5, 20, 45 s ...; its default of 40 s would dominate these tests); the per-job SLURM logs kept.
SNAKEMAKE_SLURM_ARGS = (
    "--executor", "slurm",
    "--jobs", "4",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
    "--slurm-keep-successful-logs",
    "--latency-wait", "10",
)


def unavailable_reason() -> str | None:
    """Why the test cluster cannot run on this machine, or None."""
    if os.environ.get("SPECROBUST_SLURM_TESTS", "1").lower() in ("0", "no", "false", "off"):
        return "SLURM cluster tests disabled (SPECROBUST_SLURM_TESTS=0)"
    if not sys.platform.startswith("linux"):
        return "SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "SLURM test cluster needs root (it runs munged, slurmctld and slurmd as root)"
    if not Path("/etc/debian_version").exists():
        return "SLURM test cluster needs Debian (apt-get install slurm-wlm munge)"
    installed = all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in ("slurmctld", "slurmd", "munged"))
    if not installed and shutil.which("apt-get") is None:
        return "SLURM test cluster needs apt-get to install slurm-wlm and munge"
    etc = Path("/etc/slurm/slurm.conf")
    if (etc.exists() or etc.is_symlink()) and not (etc.is_symlink() and Path(os.readlink(etc)) == SLURM_CONF):
        return f"a site SLURM is configured ({etc}); not starting a test cluster next to it"
    return None


def cluster_sh(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Job:
    """A finished batch job: id, final state (COMPLETED, FAILED, ...), exit code, its stdout+stderr."""

    job_id: str
    state: str
    exit_code: int
    output: str
    info: dict = field(default_factory=dict)


class SlurmCluster:
    """Handle on the running test cluster (what the fixture yields)."""

    conf = SLURM_CONF
    directory = CLUSTER_DIR

    @property
    def node(self) -> str:
        return subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                              check=True).stdout.split()[0]

    @property
    def gpu_device_kind(self) -> str:
        """"chardev" or "file": the kind of stand-in device file behind the node's GPU."""
        return "chardev" if stat.S_ISCHR(os.stat(CLUSTER_DIR / "dev" / "nvidia0").st_mode) else "file"

    def gpu_env(self, where: str = "step") -> dict:
        """The GPU variables SLURM sets in a job with --gpus=1 here: ``where`` is "batch" (the sbatch script)
        or "step" (an srun step, e.g. a Snakemake rule's shell); variables not listed are not set."""
        return GPU_ENV[self.gpu_device_kind][where]

    @property
    def env(self) -> dict:
        return {**os.environ, "SLURM_CONF": str(SLURM_CONF)}

    def _scontrol(self, *what: str) -> dict:
        out = subprocess.run(["scontrol", "show", *what, "-o"], capture_output=True, text=True, check=True,
                             env=self.env).stdout
        info = {}
        for token in out.split():  # Key=Value pairs; a value with blanks keeps only its first word
            key, sep, value = token.partition("=")
            if sep and key not in info:
                info[key] = value
        return info

    def job_info(self, job_id: str) -> dict:
        """`scontrol show job` as a dict (finished jobs stay known for MinJobAge=600 s): JobState, ExitCode,
        JobName, Comment, Partition, NumCPUs, MinMemoryNode, TimeLimit, Nice, TresPerJob, BatchHost, ..."""
        return self._scontrol("job", str(job_id))

    def node_info(self) -> dict:
        """`scontrol show node` as a dict: NodeName, CPUTot, RealMemory, Gres, State, ..."""
        return self._scontrol("node", self.node)

    def sbatch(self, command: str, partition: str = "cpu", gpus: int = 0, args: tuple = (),
               timeout: float = 120, workdir: Path | None = None) -> Job:
        """Submit ``command`` (bash) as a batch job, wait for it to end, return its state and output."""
        workdir = Path(workdir or self.directory / "jobs")
        workdir.mkdir(parents=True, exist_ok=True)
        out = workdir / f"job-{time.time_ns()}.out"
        cmd = ["sbatch", "--parsable", "--wait", "-p", partition, "-o", str(out), "-D", str(workdir), *args]
        if gpus:
            cmd.append(f"--gpus={gpus}")
        cmd += ["--wrap", command]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        job_id = proc.stdout.strip().split(";")[0].splitlines()[0] if proc.stdout.strip() else ""
        if not job_id.isdigit():
            raise RuntimeError(f"sbatch failed (rc={proc.returncode}): {proc.stderr}")
        info = self.job_info(job_id)
        code = int(info.get("ExitCode", "0:0").split(":")[0])
        return Job(job_id, info.get("JobState", "?"), code, out.read_text() if out.exists() else "", info)

    def snakemake(self, workdir: Path, *args: str, slurm_args: bool = True,
                  timeout: float = 180) -> subprocess.CompletedProcess:
        """Run Snakemake (this interpreter's) in ``workdir`` on the cluster with SNAKEMAKE_SLURM_ARGS (unless
        ``slurm_args`` is False, e.g. when a ``--profile`` gives them) and ``args``.

        Returns the completed process (stdout and stderr together in ``.stdout``); does not raise on failure.
        A run that hits ``timeout`` has its jobs cancelled and fails the test."""
        cmd = [sys.executable, "-m", "snakemake", *(SNAKEMAKE_SLURM_ARGS if slurm_args else ()), *args]
        try:
            return subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired as e:
            self.cancel_all()
            pytest.fail(f"snakemake on SLURM timed out after {timeout}s:\n{e.output}")

    def cancel_all(self) -> None:
        ids = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=self.env).stdout.split()
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, env=self.env)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the single-node SLURM test cluster for the session (skip where it cannot run)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        cluster_sh("install", timeout=900)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot install slurm-wlm and munge: {str(e)[-800:]}")
    was_running = cluster_sh("status", check=False).returncode == 0
    try:
        cluster_sh("start", timeout=180)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        cluster_sh("stop", check=False)
        pytest.fail(f"SLURM test cluster did not start: {e}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(SLURM_CONF))
        cluster = SlurmCluster()
        try:
            yield cluster
        finally:
            if not was_running:
                cluster_sh("stop", check=False)
