#!/usr/bin/env bash
# Hyperparameter search over a SLURM allocation: one Ray cluster on all nodes (cluster/ray_cluster.sh), many
# trials side by side.
#
#   sbatch slurm/tune.sh [CONFIG] [SPACE] [extra `gansim tune` arguments ...]   (submit from the repository root)
#   sbatch --nodes=4 --gpus-per-node=4 slurm/tune.sh configs/calogan-eplus.yaml configs/tune/calogan.yaml \
#       --data /shared/eplus.h5
#
# Each trial is a real training run (Ray Train workers) scored on physics fidelity; ASHA stops weak ones early.
# Resubmitting the same command resumes the study (finished trials kept, interrupted ones continue from their
# last checkpoint): keep GANSIM_OUT on SHARED storage. Chain past the time limit with
# sbatch --dependency=afterany:JOBID slurm/tune.sh <same arguments>.
#
# Variables (all optional):
#   GANSIM_VENV              Python environment to activate     (default: $SLURM_SUBMIT_DIR/.venv)
#   GANSIM_ENV_SCRIPT        sourced first, e.g. `module load` lines (see cluster/README.md)
#   GANSIM_OUT               study directory on shared storage  (default: $SLURM_SUBMIT_DIR/runs/tune/<config name>)
#   GANSIM_TRIALS            number of trials                   (default: 200)
#   GANSIM_WORKERS_PER_TRIAL Ray Train workers per trial        (default: 1)
#   GANSIM_GPUS_PER_TRIAL    GPUs per trial                     (default: 1 on GPU nodes, else 0)
#   GANSIM_CPUS_PER_WORKER   CPUs per training worker           (default: the config's train.cpus_per_worker)
#   GANSIM_MAX_CONCURRENT    trials at once (default: from the cluster's CPUs/GPUs and the per-trial needs)
#   GANSIM_STORAGE           Optuna storage URL or journal file (default: <out>/optuna-journal.log)
#   GANSIM_STOP_WAIT         seconds `gansim tune` gets to save the experiment after TERM (default 120)
#   Ray: GANSIM_RAY_AUTH, RAY_PORT, RAY_HEAD_IP, GANSIM_RAY_TMP, GANSIM_RAY_START_ARGS, GANSIM_RAY_WAIT,
#        GANSIM_RAY_STATE (default <out>/.ray/$SLURM_JOB_ID): see cluster/ray_cluster.sh
#
#SBATCH --job-name=gansim-tune
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --gpus-per-node=0
#SBATCH --mem=0
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%x-%j.out
#SBATCH --signal=B:TERM@180
# (--signal: TERM reaches this script 3 minutes before the time limit; it interrupts `gansim tune`, which saves
#  the experiment state, then Ray is stopped. Resubmit to continue.)
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^#SBATCH/{/^#SBATCH/d;s/^# \{0,1\}//;p}' "$0"
  exit 0
fi
CONFIG=${1:-configs/calogan-eplus.yaml}
[ "$#" -gt 0 ] && shift
SPACE=${1:-configs/tune/calogan.yaml}
[ "$#" -gt 0 ] && shift
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"

: "${SLURM_JOB_ID:?slurm/tune.sh runs inside a SLURM allocation: sbatch slurm/tune.sh [CONFIG] [SPACE] [ARGS]}"
: "${SLURM_JOB_NODELIST:?SLURM_JOB_NODELIST is not set}"
[ -f cluster/ray_cluster.sh ] || { echo "tune.sh: submit from the gansim repository root (no cluster/ in $PWD)" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "tune.sh: config not found: $CONFIG" >&2; exit 2; }
[ -f "$SPACE" ] || { echo "tune.sh: search space not found: $SPACE" >&2; exit 2; }

# shellcheck source=cluster/ray_cluster.sh
source cluster/ray_cluster.sh || exit 2

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
NNODES=${#NODES[@]}
GPUS_PER_NODE=$(gansim_gpus_per_node)
if [ "$GPUS_PER_NODE" -gt 0 ]; then GPT=${GANSIM_GPUS_PER_TRIAL:-1}; else GPT=${GANSIM_GPUS_PER_TRIAL:-0}; fi

NAME=$(basename "$CONFIG" .yaml)
OUT=${GANSIM_OUT:-$SUBMIT_DIR/runs/tune/$NAME}
mkdir -p "$OUT"
export GANSIM_RAY_STATE=${GANSIM_RAY_STATE:-$OUT/.ray/$SLURM_JOB_ID}

TUNE_ARGS=(tune --config "$CONFIG" --space "$SPACE" --trials "${GANSIM_TRIALS:-200}"
           --workers-per-trial "${GANSIM_WORKERS_PER_TRIAL:-1}" --gpus-per-trial "$GPT" --out "$OUT")
[ -n "${GANSIM_CPUS_PER_WORKER:-}" ] && TUNE_ARGS+=(--set "train.cpus_per_worker=$GANSIM_CPUS_PER_WORKER")
[ -n "${GANSIM_MAX_CONCURRENT:-}" ] && TUNE_ARGS+=(--max-concurrent "$GANSIM_MAX_CONCURRENT")
[ -n "${GANSIM_STORAGE:-}" ] && TUNE_ARGS+=(--storage "$GANSIM_STORAGE")
TUNE_ARGS+=("$@")

echo "tune.sh: job $SLURM_JOB_ID, $NNODES node(s) [${NODES[*]}], $GPUS_PER_NODE GPU(s) per node; study in $OUT;" \
     "$GPT GPU(s) and ${GANSIM_WORKERS_PER_TRIAL:-1} worker(s) per trial"

TUNE_PID=""
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  local rc=$? i
  trap - EXIT TERM INT
  if [ -n "$TUNE_PID" ] && kill -0 "$TUNE_PID" 2>/dev/null; then
    echo "tune.sh: interrupting gansim tune (it saves the experiment state; resubmit to continue)"
    kill -INT "$TUNE_PID" 2>/dev/null || true
    for i in $(seq "$((${GANSIM_STOP_WAIT:-120} * 10))"); do
      kill -0 "$TUNE_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$TUNE_PID" 2>/dev/null || true
    wait "$TUNE_PID" 2>/dev/null || true
  fi
  echo "tune.sh: stopping Ray (exit code $rc)"
  gansim_ray_stop || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

gansim_ray_start

# In the background + wait, so that SLURM's TERM runs the trap at once instead of after the study; `trap - INT`
# undoes the SIGINT-ignore of background jobs, so that Tune receives the interrupt and saves its state.
( trap - INT; exec gansim "${TUNE_ARGS[@]}" ) &
TUNE_PID=$!
set +e
wait "$TUNE_PID"
rc=$?
set -e
TUNE_PID=""
exit "$rc"
