#!/usr/bin/env bash
# Hyperparameter search over a SLURM allocation: one Ray cluster on all nodes, many trials side by side.
#
#   sbatch slurm/tune.sh [CONFIG] [SPACE] [extra `gansim tune` arguments ...]
#   sbatch --nodes=4 --gpus-per-node=4 slurm/tune.sh configs/calogan-eplus.yaml configs/tune/calogan.yaml \
#       --data /shared/eplus.h5
#
# Each trial is a real training run (Ray Train workers) scored on physics fidelity; ASHA stops weak ones early.
# Resubmitting the same command resumes the study (finished trials kept, interrupted ones continue from their
# last checkpoint): keep GANSIM_OUT on SHARED storage.
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
#   GANSIM_RAY_STATE, RAY_PORT, RAY_HEAD_IP, GANSIM_RAY_AUTH, GANSIM_RAY_START_ARGS: see cluster/ray_start.sh
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

CONFIG=${1:-configs/calogan-eplus.yaml}
[ "$#" -gt 0 ] && shift
SPACE=${1:-configs/tune/calogan.yaml}
[ "$#" -gt 0 ] && shift
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"

: "${SLURM_JOB_ID:?slurm/tune.sh runs inside a SLURM allocation: sbatch slurm/tune.sh [CONFIG] [SPACE] [ARGS]}"
: "${SLURM_JOB_NODELIST:?SLURM_JOB_NODELIST is not set}"

# shellcheck source=cluster/slurm_env.sh
source cluster/slurm_env.sh tune.sh
[ -f "$CONFIG" ] || { echo "tune.sh: config not found: $CONFIG" >&2; exit 2; }
[ -f "$SPACE" ] || { echo "tune.sh: search space not found: $SPACE" >&2; exit 2; }

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
NNODES=${#NODES[@]}
GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-0}}
GPUS_PER_NODE=${GPUS_PER_NODE##*:}  # "a100:4" -> 4
[[ "$GPUS_PER_NODE" =~ ^[0-9]+$ ]] || GPUS_PER_NODE=0
if [ "$GPUS_PER_NODE" -gt 0 ]; then GPT=${GANSIM_GPUS_PER_TRIAL:-1}; else GPT=${GANSIM_GPUS_PER_TRIAL:-0}; fi

NAME=$(basename "$CONFIG" .yaml)
OUT=${GANSIM_OUT:-$SUBMIT_DIR/runs/tune/$NAME}
mkdir -p "$OUT"
# Ray state (pids, auth token) next to the study: shared storage that every node reads.
export GANSIM_RAY_STATE=${GANSIM_RAY_STATE:-$OUT/.ray-$SLURM_JOB_ID}

TUNE_ARGS=(tune --config "$CONFIG" --space "$SPACE" --trials "${GANSIM_TRIALS:-200}"
           --workers-per-trial "${GANSIM_WORKERS_PER_TRIAL:-1}" --gpus-per-trial "$GPT" --out "$OUT")
[ -n "${GANSIM_CPUS_PER_WORKER:-}" ] && TUNE_ARGS+=(--set "train.cpus_per_worker=$GANSIM_CPUS_PER_WORKER")
[ -n "${GANSIM_MAX_CONCURRENT:-}" ] && TUNE_ARGS+=(--max-concurrent "$GANSIM_MAX_CONCURRENT")
[ -n "${GANSIM_STORAGE:-}" ] && TUNE_ARGS+=(--storage "$GANSIM_STORAGE")
TUNE_ARGS+=("$@")

echo "tune.sh: job $SLURM_JOB_ID, $NNODES node(s) [${NODES[*]}], $GPUS_PER_NODE GPU(s) per node"
echo "tune.sh: study in $OUT; $GPT GPU(s) and ${GANSIM_WORKERS_PER_TRIAL:-1} worker(s) per trial"

TUNE_PID=""
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT TERM INT
  if [ -n "$TUNE_PID" ] && kill -0 "$TUNE_PID" 2>/dev/null; then
    kill -INT "$TUNE_PID" 2>/dev/null || true  # Tune saves the experiment state on SIGINT
    wait "$TUNE_PID" 2>/dev/null || true
  fi
  echo "tune.sh: stopping Ray (exit code $rc)"
  bash cluster/ray_stop.sh || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# One Ray cluster over the allocation (head on the first node); exports RAY_ADDRESS and the auth settings.
# shellcheck disable=SC1090
source <(bash cluster/ray_start.sh)

deadline=$((SECONDS + ${GANSIM_RAY_WAIT:-180}))
until python - "$RAY_ADDRESS" "$NNODES" <<'EOF' 2>/dev/null
import sys
import ray
ray.init(address=sys.argv[1], logging_level="error", log_to_driver=False)
sys.exit(0 if sum(1 for n in ray.nodes() if n["Alive"]) >= int(sys.argv[2]) else 1)
EOF
do
  [ "$SECONDS" -lt "$deadline" ] || { echo "tune.sh: timed out waiting for $NNODES Ray node(s)" >&2; exit 1; }
  sleep 3
done
echo "tune.sh: Ray cluster with $NNODES node(s) is up at $RAY_ADDRESS"

# In the background + wait, so that SLURM's TERM runs the trap at once instead of after the study.
gansim "${TUNE_ARGS[@]}" &
TUNE_PID=$!
set +e
wait "$TUNE_PID"
rc=$?
set -e
TUNE_PID=""
exit "$rc"
