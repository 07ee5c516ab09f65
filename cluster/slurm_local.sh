#!/usr/bin/env bash
# A real 2-node SLURM cluster on this one machine, for CI and for trying slurm/*.sh on a laptop.
#
#   sudo bash cluster/slurm_local.sh up       # install (apt), configure and start; waits until both nodes are idle
#   bash cluster/slurm_local.sh status        # sinfo + squeue, or "down"
#   sudo bash cluster/slurm_local.sh down     # cancel jobs, stop every daemon it started, remove its files
#
# What `up` builds (Debian's slurm-wlm 22.05 is built with MULTIPLE_SLURMD, which makes this possible):
#   munged (as user munge, key owned by munge), one slurmctld and two slurmd daemons (`slurmd -N n1`,
#   `slurmd -N n2`) on this host: NodeHostname=<this host>, NodeAddr=127.0.0.1, distinct ports, CPUs=1 each,
#   partition "gansim" (default) = n1,n2. Spool, pid, log and TmpFS paths carry %n, so the two "nodes" never
#   share a directory (srun --mpi=pmix needs that: its per-step PMIx directory lives under TmpFS).
#   SlurmUser=root, proctrack/linuxproc, task/none, no accounting. Jobs run as the submitting user.
# Then `sbatch --nodes=2 --cpus-per-task=1 slurm/train.sh ...` works as on a real cluster (see README.md,
# "Run on a cluster").
#
# Needs root and a Debian-like system (apt-get). Idempotent: `up` on a running cluster only checks it.
# It refuses to touch a /etc/slurm/slurm.conf it did not write (a real SLURM installation).
# Variables: GANSIM_SLURM_STATE (default /var/lib/gansim-slurm: configuration copy, spool, logs),
#            GANSIM_SLURM_PORT  (slurmctld port, default 6817; the nodes use the next two ports),
#            GANSIM_SLURM_WAIT  (seconds to wait for idle nodes, default 120).
set -euo pipefail

PROG=slurm_local.sh
STATE=${GANSIM_SLURM_STATE:-/var/lib/gansim-slurm}
CTLD_PORT=${GANSIM_SLURM_PORT:-6817}
WAIT=${GANSIM_SLURM_WAIT:-120}
CONF=/etc/slurm/slurm.conf
MARKER="# written by gansim cluster/slurm_local.sh"
NODES=(n1 n2)
PARTITION=gansim
PACKAGES=(slurm-wlm munge libpmix-dev)

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "$PROG: $*"; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts system daemons): sudo bash $0 $1"
}

need_debian() {
  if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null; then
    local os=unknown
    [ -r /etc/os-release ] && os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)
    die "needs a Debian-like system with apt-get (this is: ${os:-unknown})"
  fi
}

ours() { [ -f "$CONF" ] && head -n 1 "$CONF" | grep -qxF "$MARKER"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start the distribution's services: this script starts its own daemons.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } || rc=$?
  [ "$made_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
  # Under systemd the packages enable their services for the next boot; this cluster is started by hand.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable slurmctld slurmd >/dev/null 2>&1 || true
  fi
}

start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge
  install -d -o munge -g munge -m 0700 /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0  # a munged is already serving this key (ours from an earlier `up`, or the system's)
  fi
  log "starting munged (as munge)"
  runuser -u munge -- /usr/sbin/munged
  touch "$STATE/munged.ours"
  local i
  for i in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "munged does not answer (see /var/log/munge/munged.log)"
}

write_conf() {
  local host cpus=1 i port
  host=$(hostname -s)
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/log"
  {
    echo "$MARKER"
    cat <<EOF
# Local 2-node test cluster: two slurmd (-N n1, -N n2) on this host. Remove with: cluster/slurm_local.sh down
ClusterName=gansim-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdSpoolDir=$STATE/%n/spool
SlurmdPidFile=$STATE/%n/slurmd.pid
SlurmdLogFile=$STATE/log/slurmd-%n.log
TmpFS=$STATE/%n/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=15
MinJobAge=600
EOF
    for i in "${!NODES[@]}"; do
      port=$((CTLD_PORT + 1 + i))
      echo "NodeName=${NODES[$i]} NodeHostname=$host NodeAddr=127.0.0.1 Port=$port CPUs=$cpus State=UNKNOWN"
    done
    echo "PartitionName=$PARTITION Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
  } > "$STATE/slurm.conf.new"
  # TmpFS is where jobs (and srun's PMIx server) put per-step files: writable by every user, per node.
  for i in "${NODES[@]}"; do
    mkdir -p "$STATE/$i/spool"
    install -d -m 1777 "$STATE/$i/tmp"
  done
  if ! cmp -s "$STATE/slurm.conf.new" "$CONF" 2>/dev/null; then
    mv "$STATE/slurm.conf.new" "$CONF"
    chmod 644 "$CONF"
    return 0
  fi
  rm -f "$STATE/slurm.conf.new"
}

nodes_idle() {
  local out
  out=$(sinfo -h -N -p "$PARTITION" -o '%N %t' 2>/dev/null) || return 1
  [ "$(grep -cE ' (idle|alloc|mix)$' <<< "$out")" -eq "${#NODES[@]}" ]
}

cmd_up() {
  need_root up
  need_debian
  if [ -f "$CONF" ] && ! ours; then
    die "$CONF exists and was not written by this script (a real SLURM installation?); not touching it"
  fi
  install_packages
  mkdir -p "$STATE"
  start_munge
  write_conf
  if ! pid_alive "$STATE/slurmctld.pid"; then
    log "starting slurmctld (port $CTLD_PORT)"
    slurmctld -f "$CONF"
  fi
  local n
  for n in "${NODES[@]}"; do
    if ! pid_alive "$STATE/$n/slurmd.pid"; then
      log "starting slurmd -N $n"
      # srun --mpi=pmix: slurmstepd's PMIx server (Debian's, built with munge) would ask each rank for munge
      # credentials, which the PMIx inside the pip Open MPI wheel lacks (a "find-available:not-valid" warning
      # per rank); "native" (uid check over the local socket) is in every PMIx.
      PMIX_MCA_psec=native slurmd -f "$CONF" -N "$n"
    fi
  done
  local deadline=$((SECONDS + WAIT))
  until nodes_idle; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      sinfo -N >&2 || true
      tail -n 5 "$STATE/log/slurmctld.log" "$STATE"/log/slurmd-*.log >&2 || true
      die "nodes not idle after ${WAIT}s (logs in $STATE/log)"
    fi
    sleep 1
  done
  local config
  config=$(scontrol show config)
  grep -Eq '^MULTIPLE_SLURMD +=.*Yes' <<< "$config" \
    || die "this slurmd build lacks MULTIPLE_SLURMD (needed for two nodes on one host)"
  log "up: partition $PARTITION = ${NODES[*]} (1 CPU each); try: sbatch --nodes=2 --wrap 'srun hostname'"
  sinfo -N -p "$PARTITION"
}

cmd_down() {
  need_root down
  if ! ours; then
    log "not up (no $CONF written by this script)"
    rm -rf "$STATE"
    return 0
  fi
  if pid_alive "$STATE/slurmctld.pid"; then
    log "cancelling all jobs of partition $PARTITION"
    scancel --partition="$PARTITION" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while [ -n "$(squeue -h -p "$PARTITION" -o %i 2>/dev/null)" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 1
    done
  fi
  local f pids=()
  for f in "$STATE/slurmctld.pid" "$STATE"/*/slurmd.pid; do
    pid_alive "$f" && pids+=("$(cat "$f")")
  done
  if [ "${#pids[@]}" -gt 0 ]; then
    log "stopping slurmctld and slurmd (pids ${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local i
    for i in $(seq 100); do
      local alive=0 p
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ "$alive" -eq 0 ] && break
      sleep 0.2
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  if [ -f "$STATE/munged.ours" ] && pid_alive /run/munge/munged.pid; then
    log "stopping munged"
    kill -TERM "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  fi
  rm -f "$CONF"
  rm -rf "$STATE"
  log "down"
}

cmd_status() {
  if ! ours; then
    echo "down"
    return 3
  fi
  if ! pid_alive "$STATE/slurmctld.pid"; then
    echo "down (configured in $CONF, slurmctld not running)"
    return 3
  fi
  sinfo -N -p "$PARTITION"
  squeue
  nodes_idle || return 3
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  "") usage >&2; exit 2 ;;
  *) echo "$PROG: unknown command '$1' (use up, down or status; --help)" >&2; exit 2 ;;
esac
