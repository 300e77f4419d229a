"""End-to-end runs on a real single-node SLURM cluster (tests/slurm/cluster.sh, fixture in slurm_cluster.py).

Root on Debian only (the fixture installs slurm-wlm and munge with apt-get and skips elsewhere). The node
advertises one GPU it does not have, so the GPU tests see exactly what a GPU job sees when SLURM hands it a GPU
that CUDA cannot use. About a minute and a half on 2 cores, most of it Snakemake's status polling.
"""
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slurm_cluster import GPU_VARS  # the fixture slurm_cluster comes from conftest.py

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

NO_REAL_GPU = not Path("/dev/nvidiactl").exists()  # with a real NVIDIA GPU, CUDA_VISIBLE_DEVICES=0 would work

# Written into each workflow folder: a job records its SLURM/GPU environment (and, with --torch, what torch
# sees) as JSON -- the proof that it ran inside a SLURM job, and which one.
DUMP_PY = """\
import json, os, socket, sys
data = {"host": socket.gethostname(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "CUDA_", "GPU_", "ROCR_", "ZE_"))}}
if "--torch" in sys.argv:
    import torch
    data["cuda_available"] = torch.cuda.is_available()
    data["device_count"] = torch.cuda.device_count()
with open(sys.argv[1], "w") as f:
    json.dump(data, f, indent=1)
"""


def env_of(output: str) -> dict:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def run_id(log: str) -> str:
    """The plugin's run UUID: every sbatch of one Snakemake run uses it as --job-name."""
    m = re.search(r"SLURM run ID: (\S+)", log)
    assert m, log[-3000:]
    return m.group(1)


def submitted(log: str) -> dict:
    """{rule or group log folder: SLURM job id} from the plugin's 'submitted with SLURM jobid' lines."""
    return {folder: job for job, folder in
            re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/([^/]+)/", log)}


def write_workflow(path: Path, snakefile: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "dump.py").write_text(DUMP_PY)
    (path / "Snakefile").write_text(f"PY = {sys.executable!r}\n" + textwrap.dedent(snakefile))
    return path


# ---------------------------------------------------------------------------------------------------------- (a)
def test_cluster_runs_batch_jobs_on_cpu_and_gpu_partitions(slurm_cluster):
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%P %a %T %G"], capture_output=True, text=True, check=True).stdout
    assert sorted(sinfo.split("\n")[:2]) == ["cpu* up idle gpu:1", "gpu up idle gpu:1"], sinfo

    show = "env | grep -E '^(SLURM_|CUDA_|GPU_|ROCR_)'; echo HOST=$(hostname)"
    cpu = slurm_cluster.sbatch(show, partition="cpu")
    assert (cpu.state, cpu.exit_code) == ("COMPLETED", 0), cpu
    env = env_of(cpu.output)
    assert env["SLURM_JOB_ID"] == cpu.job_id and env["SLURM_JOB_PARTITION"] == "cpu"
    assert not set(GPU_VARS) & set(env), env  # a CPU job sees no GPU variables at all

    for how in ({"gpus": 1}, {"args": ("--gres=gpu:1",)}):
        gpu = slurm_cluster.sbatch(show, partition="gpu", **how)
        assert (gpu.state, gpu.exit_code) == ("COMPLETED", 0), gpu
        env = env_of(gpu.output)
        assert env["SLURM_JOB_PARTITION"] == "gpu"
        expected = slurm_cluster.gpu_env("batch")  # CUDA_VISIBLE_DEVICES=0 etc. for a GPU that isn't there
        assert {k: env.get(k) for k in GPU_VARS} == {k: expected.get(k) for k in GPU_VARS}, env
        assert env["HOST"] == gpu.info["BatchHost"]

    # Exit codes come back (a fail-fast job is visible as FAILED with its code) ...
    failed = slurm_cluster.sbatch("echo about to fail >&2; exit 3")
    assert (failed.state, failed.exit_code) == ("FAILED", 3) and "about to fail" in failed.output
    # ... and GRES is a real resource: the node has one GPU, so two cannot be had.
    two = subprocess.run(["sbatch", "-p", "gpu", "--gpus=2", "--wrap", "true"], capture_output=True, text=True)
    assert two.returncode != 0 and "Requested node configuration is not available" in two.stderr, two.stderr


# ------------------------------------------------------------------------------------------------- (b) and (c)
@pytest.fixture(scope="module")
def workflow_run(slurm_cluster, tmp_path_factory):
    """One Snakemake run on SLURM: a CPU rule (default partition from --default-resources) and a GPU rule."""
    wd = write_workflow(tmp_path_factory.mktemp("slurm_wf"), """\
        localrules: all

        rule all:
            input: "cpu.json", "gpu.json"

        rule cpu_job:
            output: "cpu.json"
            shell: "{PY} dump.py {output}"

        rule gpu_job:
            output: "gpu.json"
            resources: slurm_partition="gpu", gpu=1
            shell: "{PY} dump.py {output} --torch"
        """)
    proc = slurm_cluster.snakemake(
        wd, "--default-resources", "slurm_partition=cpu", "mem_mb=300", "runtime=5",
        "--set-resources", "cpu_job:slurm_extra='--nice=7'")
    assert proc.returncode == 0, proc.stdout[-5000:]
    return wd, proc.stdout


def test_snakemake_workflow_runs_every_job_through_sbatch(slurm_cluster, workflow_run):
    wd, log = workflow_run
    uuid, jobs = run_id(log), submitted(log)
    assert set(jobs) == {"rule_cpu_job", "rule_gpu_job"}, log[-3000:]
    # squeue (MinJobAge=600 keeps finished jobs) lists exactly these two jobs under the run's job name
    listed = subprocess.run(["squeue", "-h", "--states=all", "--name", uuid, "-o", "%i %T"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert sorted(filter(None, listed)) == sorted(f"{j} COMPLETED" for j in jobs.values()), listed
    for rule, partition in (("cpu_job", "cpu"), ("gpu_job", "gpu")):
        job = jobs[f"rule_{rule}"]
        data = json.loads((wd / f"{rule.split('_')[0]}.json").read_text())
        assert data["env"]["SLURM_JOB_ID"] == job  # the rule's own process ran inside that SLURM job
        assert data["env"]["SLURM_JOB_PARTITION"] == partition
        info = slurm_cluster.job_info(job)
        assert (info["JobName"], info["Comment"], info["Partition"]) == (uuid, f"rule_{rule}", partition)
        assert (wd / ".snakemake" / "slurm_logs" / f"rule_{rule}" / f"{job}.log").exists()
    # resources reach sbatch: mem_mb -> --mem, runtime -> -t, slurm_extra verbatim
    cpu_info = slurm_cluster.job_info(jobs["rule_cpu_job"])
    assert (cpu_info["MinMemoryNode"], cpu_info["TimeLimit"], cpu_info["Nice"]) == ("300M", "00:05:00", "7")


def test_gpu_rule_sees_the_advertised_gpu_but_no_cuda_device(slurm_cluster, workflow_run):
    wd, log = workflow_run
    gpu, cpu = (json.loads((wd / f"{n}.json").read_text()) for n in ("gpu", "cpu"))
    # `resources: gpu=1` -> sbatch --gpus=1; the rule runs in the jobstep's `srun ... --gpus=1` step
    assert slurm_cluster.job_info(gpu["env"]["SLURM_JOB_ID"])["TresPerJob"] == "gres:gpu:1"
    expected = slurm_cluster.gpu_env("step")  # SLURM_JOB_GPUS is only in the batch script's environment
    assert {k: gpu["env"].get(k) for k in GPU_VARS} == {k: expected.get(k) for k in GPU_VARS}, gpu["env"]
    assert gpu["host"] == slurm_cluster.node
    assert not set(GPU_VARS) & set(cpu["env"]), cpu["env"]
    if NO_REAL_GPU:  # what a fail-fast check sees: a GPU granted, CUDA_VISIBLE_DEVICES=0, no CUDA device
        assert (gpu["cuda_available"], gpu["device_count"]) == (False, 0)


def test_gpu_job_without_cuda_device_fails_at_once_with_host_and_devices(slurm_cluster, tmp_path):
    """The harness for the fail-fast check: a GPU rule whose torch finds no CUDA device stops at once, and the
    message (host, CUDA_VISIBLE_DEVICES) reaches the plugin's SLURM log and Snakemake's error report."""
    if not NO_REAL_GPU:
        pytest.skip("this host has an NVIDIA GPU: CUDA_VISIBLE_DEVICES=0 is usable here")
    wd = write_workflow(tmp_path, """\
        rule train_like:
            output: "model.pt"
            resources: slurm_partition="gpu", gpu=1, runtime=5, mem_mb=500
            script: "check_gpu.py"
        """)
    # as a rule script would do it (a script: runs in its own Python; in a `run:` block SystemExit makes
    # Snakemake 9.27 hang instead of failing the job)
    (wd / "check_gpu.py").write_text(textwrap.dedent("""\
        import os, socket, sys
        import torch
        if not torch.cuda.is_available():
            sys.exit(f"GPU job on {socket.gethostname()} sees no CUDA device "
                     f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})")
        open(snakemake.output[0], "w").close()
        """))
    proc = slurm_cluster.snakemake(wd, "--retries", "0")
    assert proc.returncode != 0 and not (wd / "model.pt").exists()
    job = submitted(proc.stdout)["rule_train_like"]
    assert f"SLURM-job '{job}' failed, SLURM status is: 'FAILED'" in proc.stdout, proc.stdout[-3000:]
    slurm_log = (wd / ".snakemake" / "slurm_logs" / "rule_train_like" / f"{job}.log").read_text()
    devices = slurm_cluster.gpu_env("step").get("CUDA_VISIBLE_DEVICES")  # "0" (None with a plain device file)
    assert f"GPU job on {slurm_cluster.node} sees no CUDA device (CUDA_VISIBLE_DEVICES={devices})" in slurm_log
    assert slurm_cluster.job_info(job)["ExitCode"].split(":")[0] != "0"


# --------------------------------------------------------------------------------------------------- groups
def test_group_components_share_one_allocation_via_a_profile(slurm_cluster, tmp_path):
    """`group:` + `--group-components g=2` on this plugin: all four jobs in ONE sbatch allocation; each
    connected component is its own srun step, run one after the other (the jobstep runs with --jobs 1),
    while the allocation is sized as if they ran in parallel (CPUs and memory summed over components).
    The settings come from a profile, as a site/cluster profile would give them."""
    if int(slurm_cluster.node_info()["CPUTot"]) < 2:
        pytest.skip("needs a node with 2 CPUs (the group asks for 1 CPU per component)")
    wd = write_workflow(tmp_path / "wf", """\
        localrules: all

        rule all:
            input: expand("out/b{s}.json", s=[1, 2])

        rule a:
            output: "out/a{s}.json"
            group: "g"
            shell: "{PY} dump.py {output}"

        rule b:
            input: "out/a{s}.json"
            output: "out/b{s}.json"
            group: "g"
            shell: "{PY} dump.py {output}"
        """)
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(textwrap.dedent("""\
        executor: slurm
        jobs: 4
        slurm-status-command: squeue
        slurm-init-seconds-before-status-checks: 5
        slurm-keep-successful-logs: true
        latency-wait: 10
        default-resources:
          slurm_partition: cpu
          mem_mb: 200
          runtime: 5
        group-components:
          - g=2
        """))
    proc = slurm_cluster.snakemake(wd, "--profile", str(profile), slurm_args=False)
    assert proc.returncode == 0, proc.stdout[-5000:]
    jobs = submitted(proc.stdout)
    assert list(jobs) == ["group_g_a_b"], proc.stdout[-3000:]  # one submission for the whole group
    envs = {p.stem: json.loads(p.read_text())["env"] for p in (wd / "out").glob("*.json")}
    assert {e["SLURM_JOB_ID"] for e in envs.values()} == {jobs["group_g_a_b"]}
    for s in ("1", "2"):  # a and b of one component share a step; the two components have different steps
        assert envs[f"a{s}"]["SLURM_STEP_ID"] == envs[f"b{s}"]["SLURM_STEP_ID"]
    assert envs["a1"]["SLURM_STEP_ID"] != envs["a2"]["SLURM_STEP_ID"]
    info = slurm_cluster.job_info(jobs["group_g_a_b"])
    assert (info["NumCPUs"], info["MinMemoryNode"], info["TimeLimit"]) == ("2", "400M", "00:10:00")
