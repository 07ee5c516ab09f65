#!/usr/bin/env bash
# Multi-node GAN training: one Ray node per SLURM node (cluster/ray_cluster.sh), then `gansim train` joins it.
#
#   sbatch slurm/train.sh [CONFIG] [extra `gansim train` arguments ...]          (submit from the repository root)
#   sbatch --nodes=4 --gpus-per-node=4 slurm/train.sh configs/calogan-eplus.yaml --data /shared/eplus.h5
#
# Resubmitting the same command resumes from the latest checkpoint (same --out / run.name on shared storage);
# chain past the time limit with: sbatch --dependency=afterany:JOBID slurm/train.sh <same arguments>.
#
# Variables (all optional):
#   GANSIM_VENV        Python environment to activate        (default: $SLURM_SUBMIT_DIR/.venv)
#   GANSIM_ENV_SCRIPT  sourced first, e.g. `module load` lines (see cluster/README.md)
#   GANSIM_OUT         run directory on SHARED storage        (default: $SLURM_SUBMIT_DIR/runs/<config name>)
#   GANSIM_WORKERS     Ray Train workers   (default: total GPUs, or one per node on CPU nodes)
#   GANSIM_GPUS_PER_WORKER                 (default: 1 with GPUs, else 0)
#   GANSIM_CPUS_PER_WORKER                 (default: CPUs per node / workers per node)
#   GANSIM_STOP_WAIT   seconds `gansim train` gets to stop after TERM before Ray is stopped (default 60)
#   Ray: GANSIM_RAY_AUTH, RAY_PORT, RAY_HEAD_IP, GANSIM_RAY_TMP, GANSIM_RAY_START_ARGS, GANSIM_RAY_WAIT,
#        GANSIM_RAY_STATE (default <out>/.ray/$SLURM_JOB_ID): see cluster/ray_cluster.sh
#
#SBATCH --job-name=gansim-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --gpus-per-node=0
#SBATCH --mem=0
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%x-%j.out
#SBATCH --signal=B:TERM@120
# (--signal: SLURM sends TERM to this script 2 minutes before the time limit; the trap interrupts training and
#  stops Ray cleanly. The last per-epoch checkpoint is what the next submission resumes from.)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^#SBATCH/{/^#SBATCH/d;s/^# \{0,1\}//;p}' "$0"
  exit 0
fi
CONFIG=${1:-configs/calogan-eplus.yaml}
[ "$#" -gt 0 ] && shift
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"

: "${SLURM_JOB_ID:?slurm/train.sh runs inside a SLURM allocation: sbatch slurm/train.sh [CONFIG] [ARGS]}"
: "${SLURM_JOB_NODELIST:?SLURM_JOB_NODELIST is not set}"
[ -f cluster/ray_cluster.sh ] || { echo "train.sh: submit from the gansim repository root (no cluster/ in $PWD)" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "train.sh: config not found: $CONFIG" >&2; exit 2; }

# shellcheck source=cluster/ray_cluster.sh
source cluster/ray_cluster.sh || exit 2

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
NNODES=${#NODES[@]}
GPUS_PER_NODE=$(gansim_gpus_per_node)
CPUS_PER_NODE=$(gansim_cpus_per_task)
if [ "$GPUS_PER_NODE" -gt 0 ]; then
  WORKERS=${GANSIM_WORKERS:-$((NNODES * GPUS_PER_NODE))}
  GPW=${GANSIM_GPUS_PER_WORKER:-1}
else
  WORKERS=${GANSIM_WORKERS:-$NNODES}
  GPW=${GANSIM_GPUS_PER_WORKER:-0}
fi
PER_NODE=$(( (WORKERS + NNODES - 1) / NNODES ))
CPW=${GANSIM_CPUS_PER_WORKER:-$(( CPUS_PER_NODE / PER_NODE > 0 ? CPUS_PER_NODE / PER_NODE : 1 ))}

NAME=$(basename "$CONFIG" .yaml)
OUT=${GANSIM_OUT:-$SUBMIT_DIR/runs/$NAME}
mkdir -p "$OUT"
export GANSIM_RAY_STATE=${GANSIM_RAY_STATE:-$OUT/.ray/$SLURM_JOB_ID}

TRAIN_ARGS=(train --config "$CONFIG" --workers "$WORKERS" --gpus-per-worker "$GPW" --cpus-per-worker "$CPW"
            --out "$OUT" "$@")

echo "train.sh: job $SLURM_JOB_ID, $NNODES node(s) [${NODES[*]}]; $WORKERS worker(s) x $GPW GPU / $CPW CPU;" \
     "outputs and checkpoints in $OUT"

TRAIN_PID=""
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  local rc=$? i
  trap - EXIT TERM INT
  if [ -n "$TRAIN_PID" ] && kill -0 "$TRAIN_PID" 2>/dev/null; then
    echo "train.sh: interrupting gansim train (the last per-epoch checkpoint is kept for the next submission)"
    kill -INT "$TRAIN_PID" 2>/dev/null || true
    for i in $(seq "$((${GANSIM_STOP_WAIT:-60} * 10))"); do
      kill -0 "$TRAIN_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$TRAIN_PID" 2>/dev/null || true
    wait "$TRAIN_PID" 2>/dev/null || true
  fi
  echo "train.sh: stopping Ray (exit code $rc)"
  gansim_ray_stop || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

gansim_ray_start

# In the background + wait, so that a TERM (scancel, time limit) runs the trap at once. `trap - INT` undoes
# the SIGINT-ignore that bash gives background jobs, so that the trap can interrupt Python cleanly.
( trap - INT; exec gansim "${TRAIN_ARGS[@]}" ) &
TRAIN_PID=$!
set +e
wait "$TRAIN_PID"
rc=$?
set -e
TRAIN_PID=""
exit "$rc"
