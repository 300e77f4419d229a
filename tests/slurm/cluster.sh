#!/usr/bin/env bash
# A throwaway single-node SLURM cluster for the tests and CI (Debian's slurm-wlm + munge, run as root).
#
#   tests/slurm/cluster.sh install   apt-get install slurm-wlm munge (quiet, no recommends, idempotent)
#   tests/slurm/cluster.sh start     write the configs, start munged, slurmctld, slurmd; wait until the node is idle
#   tests/slurm/cluster.sh stop      cancel all jobs, stop the daemons and any job left over; no process stays
#   tests/slurm/cluster.sh status    daemons, sinfo, squeue
#   tests/slurm/cluster.sh env       prints `export SLURM_CONF=...`: eval "$(tests/slurm/cluster.sh env)"
#
# One node (this host, `slurmd -C` for CPUs/memory) in two partitions, `cpu` (default) and `gpu`. The node
# advertises `Gres=gpu:1` but has no GPU. slurmd 22.05 drops a gres/gpu without File= ("Removing file-less
# GPU", node INVAL), so gres.conf points at a stand-in device file, $DIR/dev/nvidia0, of one of two kinds
# ($SPECROBUST_SLURM_GPU_DEVICE):
#   chardev (default): a character device with /dev/null's numbers. A `--gpus=1`/`--gres=gpu:1` job gets what
#     it gets on a real one-GPU node: CUDA_VISIBLE_DEVICES=0, GPU_DEVICE_ORDINAL=0, ROCR_VISIBLE_DEVICES=0,
#     SLURM_GPUS_ON_NODE=1, SLURM_JOB_GPUS=0 (batch) / SLURM_STEP_GPUS=0 (srun step) -- but CUDA finds no device.
#   file (also the fallback where mknod is not allowed): an empty file; slurmd logs "not a valid character or
#     block device" and still counts the GPU, and the job gets SLURM_GPUS_ON_NODE=1 but no CUDA_VISIBLE_DEVICES.
# Either way that is the "GPU asked for, none usable" case a GPU job must fail fast on (tests/test_slurm.py).
# SelectType=select/cons_tres with CR_Core_Memory (CPUs, memory and gres are consumed), no accounting
# (no slurmdbd: `sacct` fails, so Snakemake's slurm executor needs `--slurm-status-command squeue`), and
# MinJobAge=600 so `squeue` still shows finished jobs (the executor falls back to sacct below 3x its initial
# status-check interval).
#
# Everything (configs, munge key and socket, state, spool, logs, pid files) lives under one folder,
# $SPECROBUST_SLURM_DIR (default /tmp/specrobust-slurm). Clients find the cluster through
# SLURM_CONF=$SPECROBUST_SLURM_DIR/etc/slurm.conf and, while it runs, through the default path too: `start`
# symlinks /etc/slurm/slurm.conf to it and `stop` removes that link. The link is needed because the Snakemake
# jobstep executor (snakemake-executor-plugin-slurm-jobstep 0.6.1) drops SLURM_CONF (all SLURM_* but the job
# id) before its nested `srun`, which then only finds a config at the default path. `start` refuses to run
# where /etc/slurm/slurm.conf is a real file (a site's own SLURM). Ports: $SPECROBUST_SLURM_PORT (slurmctld,
# default 16817) and the next one (slurmd), so a site's own SLURM on 6817/6818 is left alone.
set -euo pipefail

DIR="${SPECROBUST_SLURM_DIR:-/tmp/specrobust-slurm}"
PORT="${SPECROBUST_SLURM_PORT:-16817}"
CONF="$DIR/etc/slurm.conf"
ETC_LINK=/etc/slurm/slurm.conf
MUNGE_SOCKET="$DIR/munge/munge.socket.2"
PACKAGES=(slurm-wlm munge)
BINARIES=(munged slurmctld slurmd sbatch squeue sinfo scontrol scancel srun)
START_TIMEOUT="${SPECROBUST_SLURM_START_TIMEOUT:-60}"
export SLURM_CONF="$CONF"

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root here)"; }
node_name() { hostname -s; }

missing_binaries() {
  local b missing=()
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing+=("$b")
  done
  echo "${missing[*]:-}"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$DIR/run/$1.pid" ] && cat "$DIR/run/$1.pid" 2>/dev/null || true; }

cmd_install() {
  need_root
  if [ -z "$(missing_binaries)" ]; then
    log "slurm-wlm and munge already installed ($(slurmd -V 2>/dev/null))"
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get not found (Debian/Ubuntu only)"
  # Keep apt from starting the packaged services (munge.service, slurmctld, slurmd): we run our own.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local rc=0 err
  err="$(mktemp)"
  {
    export DEBIAN_FRONTEND=noninteractive
    # Try without refreshing the package lists first (fast when they are current), then with.
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>"$err" || {
      apt-get update -qq >/dev/null 2>>"$err" &&
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>>"$err"
    }
  } || rc=$?
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$rc" != 0 ]; then
    tail -n 20 "$err" >&2 || true
    rm -f "$err"
    die "apt-get install ${PACKAGES[*]} failed (rc=$rc)"
  fi
  rm -f "$err"
  [ -z "$(missing_binaries)" ] || die "installed, but still missing: $(missing_binaries)"
  log "installed $(slurmd -V)"
}

# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
hardware_line() {
  local line
  line="$(slurmd -C 2>/dev/null | head -n1)" || true
  [[ "$line" == NodeName=* ]] || die "slurmd -C gave no node line: '$line'"
  # Drop NodeName (ours is set explicitly); keep CPUs, Boards, sockets, cores, threads, RealMemory.
  echo "${line#NodeName=* }"
}

write_configs() {
  local node hw mem cpus defmem
  node="$(node_name)"
  hw="$(hardware_line)"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
  cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
  [ -n "$mem" ] && [ -n "$cpus" ] || die "could not parse slurmd -C: $hw"
  # Memory per CPU of a job that gives no --mem (else it would hold the whole node's memory).
  defmem=$(( mem / cpus )); if [ "$defmem" -gt 1024 ]; then defmem=1024; fi
  : >"$DIR/etc/plugstack.conf"
  cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh start -- a single-node test cluster; rewritten on every start.
ClusterName=specrobust
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state/slurmctld
SlurmdSpoolDir=$DIR/state/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf
MailProg=/bin/true
# No cgroups: processes tracked by parent pid; CPU binding by affinity (srun --cpu-bind works).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
# CPUs, memory and GRES are real, consumable resources.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
GresTypes=gpu
# No accounting database: sacct does not work, squeue is the status command.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue/scontrol for 10 minutes (the Snakemake executor polls squeue).
MinJobAge=600
ReturnToService=2
# Reject at submission what can never run here (more CPUs/memory than the node has) instead of pending forever.
EnforcePartLimits=ALL
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
SchedulerParameters=sched_interval=2
NodeName=$node NodeAddr=127.0.0.1 $hw Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node Default=NO MaxTime=INFINITE State=UP
EOF
  # The GPU's stand-in device file (see the top of this file).
  mkdir -p "$DIR/dev"
  rm -f "$DIR/dev/nvidia0"
  case "${SPECROBUST_SLURM_GPU_DEVICE:-chardev}" in
    chardev)
      mknod -m 0666 "$DIR/dev/nvidia0" c 1 3 2>/dev/null || {
        log "mknod not allowed here: the GPU's device file is a plain file (no CUDA_VISIBLE_DEVICES in jobs)"
        : >"$DIR/dev/nvidia0"
      } ;;
    file) : >"$DIR/dev/nvidia0" ;;
    *) die "SPECROBUST_SLURM_GPU_DEVICE must be chardev or file" ;;
  esac
  cat >"$DIR/etc/gres.conf" <<EOF
# Written by tests/slurm/cluster.sh start: one GPU that does not exist (a stand-in device file, no driver).
AutoDetect=off
NodeName=$node Name=gpu Count=1 File=$DIR/dev/nvidia0
EOF
}

start_munge() {
  if pid_alive "$(pid_of munged)"; then return 0; fi
  install -d -m 0700 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    ( umask 077; head -c 1024 /dev/urandom >"$DIR/munge/munge.key" )
  fi
  chmod 0600 "$DIR/munge/munge.key"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged failed to start; see $DIR/log/munged.log"
  local i
  for i in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && return 0; sleep 0.1; done
  die "munged socket $MUNGE_SOCKET did not appear"
}

node_state() { sinfo -h -N -n "$(node_name)" -o %T 2>/dev/null | head -n1 || true; }

cluster_up() {
  pid_alive "$(pid_of munged)" && pid_alive "$(pid_of slurmctld)" && pid_alive "$(pid_of slurmd)" &&
    [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing) ]]
}

our_link() { [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" = "$CONF" ]; }

link_etc() {
  if our_link; then return 0; fi
  if [ -e "$ETC_LINK" ] || [ -L "$ETC_LINK" ]; then
    die "$ETC_LINK exists and is not ours (a site SLURM?); refusing to start a test cluster here"
  fi
  mkdir -p "$(dirname "$ETC_LINK")"
  ln -s "$CONF" "$ETC_LINK"
}

unlink_etc() { if our_link; then rm -f "$ETC_LINK"; fi; }

cmd_start() {
  need_root
  [ -z "$(missing_binaries)" ] || die "missing $(missing_binaries): run '$0 install' first"
  if cluster_up; then
    log "already running (node $(node_name): $(node_state)); SLURM_CONF=$CONF"
    return 0
  fi
  if [ -e "$ETC_LINK" ] && ! our_link; then
    die "$ETC_LINK exists and is not ours (a site SLURM?); refusing to start a test cluster here"
  fi
  if [ -e "$DIR" ] && [ "$(stat -c %u "$DIR")" != 0 ]; then die "$DIR exists and is not owned by root"; fi
  stop_all quiet
  # Fresh state every start; the munge key is kept.
  rm -rf "$DIR/state" "$DIR/run" "$DIR/etc" "$DIR/dev"
  mkdir -p "$DIR/etc" "$DIR/state/slurmctld" "$DIR/state/slurmd" "$DIR/log" "$DIR/run"
  local f
  for f in "$DIR"/log/*.log; do [ -e "$f" ] && mv -f "$f" "$f.1"; done  # the previous run's logs: *.log.1
  chmod 0755 "$DIR"
  write_configs
  link_etc
  start_munge
  slurmctld -f "$CONF" || die "slurmctld failed to start; see $DIR/log/slurmctld.log"
  slurmd -f "$CONF" -N "$(node_name)" || die "slurmd failed to start; see $DIR/log/slurmd.log"
  local state="" t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$START_TIMEOUT" ]; do
    state="$(node_state)"
    case "$state" in
      idle) break ;;
      drain*|down*|fail*) scontrol update NodeName="$(node_name)" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    log "node $(node_name) not idle after ${START_TIMEOUT}s (state '$state')"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    scontrol show node "$(node_name)" >&2 2>/dev/null || true
    exit 1
  fi
  log "up in $((SECONDS - t0))s: node $(node_name) idle, partitions cpu (default) and gpu, SLURM_CONF=$CONF"
}

# Stop daemons by their pid files, together: TERM, then KILL whatever is left after a grace period.
stop_daemons() {
  local name pid pids=() i alive
  for name in "$@"; do
    pid="$(pid_of "$name")"
    if pid_alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for i in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do if pid_alive "$pid"; then alive=1; fi; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi; done
  for name in "$@"; do rm -f "$DIR/run/$name.pid"; done
}

# Job step daemons and job processes of *this* cluster: slurmstepd processes, and processes of jobs, that
# carry our SLURM_CONF in their environment (slurmd exports it to every step and job).
leftover_pids() {
  local p env exe
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [ "$p" = "$$" ] && continue
    env="$(tr "\\0" "\\n" 2>/dev/null <"/proc/$p/environ")" || continue
    grep -qxF "SLURM_CONF=$CONF" <<<"$env" || continue
    exe="$(readlink "/proc/$p/exe" 2>/dev/null || true)"
    if [[ "$exe" == */slurmstepd ]] || grep -q '^SLURM_JOB_ID=' <<<"$env"; then
      # never ourselves or an ancestor of ours (stop might be called from inside a job)
      local a=$$ mine=0
      while [ "${a:-0}" -gt 1 ]; do
        [ "$a" = "$p" ] && { mine=1; break; }
        a="$(awk '/^PPid:/{print $2}' "/proc/$a/status" 2>/dev/null || echo 0)"
      done
      if [ "$mine" = 0 ]; then echo "$p"; fi
    fi
  done
  return 0
}

stop_all() {
  local quiet="${1:-}"
  if pid_alive "$(pid_of slurmctld)"; then
    # Cancel all jobs and give slurmd a moment to tear the steps down cleanly.
    local ids i
    ids="$(squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)"
    if [ -n "${ids// }" ]; then
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for i in $(seq 50); do
        [ -z "$(squeue -h -t RUNNING,COMPLETING,PENDING -o %i 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop_daemons slurmd slurmctld
  local pids i
  pids="$(leftover_pids)"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 30); do pids="$(leftover_pids)"; [ -z "$pids" ] && break; sleep 0.1; done
    # shellcheck disable=SC2086
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
  fi
  stop_daemons munged
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  unlink_etc
  [ -n "$quiet" ] || log "stopped (logs kept in $DIR/log)"
}

cmd_stop() {
  need_root
  [ -d "$DIR" ] || { log "nothing to stop ($DIR absent)"; return 0; }
  stop_all
}

cmd_status() {
  local name pid rc=0
  for name in munged slurmctld slurmd; do
    pid="$(pid_of "$name")"
    if pid_alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; rc=3; fi
  done
  echo "SLURM_CONF=$CONF"
  if [ "$rc" = 0 ]; then
    sinfo -o '%P %a %D %T %c %m %G' || rc=3
    squeue -o '%i %P %j %T %M %b %R' || rc=3
  fi
  return "$rc"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 {install|start|stop|restart|status|env}" >&2; exit 2 ;;
esac
