#!/usr/bin/env bash
# Multi-node GAN training: one Ray node per SLURM node, then `gansim train` on the head joins that cluster.
#
#   sbatch slurm/train.sh [CONFIG] [extra `gansim train` arguments ...]
#   sbatch --nodes=4 --gpus-per-node=4 slurm/train.sh configs/calogan-eplus.yaml --data /shared/eplus.h5
#
# Resubmitting the same command resumes from the latest checkpoint (same --out / run.name on shared storage).
#
# Variables (all optional):
#   GANSIM_VENV        Python environment to activate        (default: $SLURM_SUBMIT_DIR/.venv)
#   GANSIM_ENV_SCRIPT  sourced first, e.g. `module load` lines (see cluster/README.md)
#   GANSIM_OUT         run directory on SHARED storage        (default: $SLURM_SUBMIT_DIR/runs/<config name>)
#   GANSIM_WORKERS     Ray Train workers   (default: total GPUs, or one per node on CPU nodes)
#   GANSIM_GPUS_PER_WORKER                 (default: 1 with GPUs, else 0)
#   GANSIM_CPUS_PER_WORKER                 (default: CPUs per node / workers per node)
#   RAY_PORT           GCS port of the head (default 6379)
#   GANSIM_RAY_LAUNCH  start (default: `ray start --head` + `ray start --address` via srun, `--block`ed so that
#                      killing the step stops exactly this job's Ray) or symmetric (`ray symmetric-run`, Ray
#                      >= 2.49: one srun over all nodes; it calls `ray stop` on exit, so use exclusive nodes)
#   GANSIM_RAY_AUTH    token (default: a per-job random token in a 0600 file on shared storage, RAY_AUTH_MODE=
#                      token for every node and the driver) or disabled (trusted private network only)
#   GANSIM_RAY_START_ARGS  extra `ray start` arguments for every node, e.g. "--object-store-memory=20000000000"
#   RAY_HEAD_IP / GANSIM_WORKER_IP   override address detection (head default: `hostname --ip-address`)
#   GANSIM_RAY_TMP     node-local Ray temp dir (default /tmp/ray-gansim-$SLURM_JOB_ID; keep it short)
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
# (--signal: SLURM sends TERM to this script 2 minutes before the time limit, so the trap below stops Ray
#  cleanly; the last per-epoch checkpoint is what the next submission resumes from.)
set -euo pipefail

CONFIG=${1:-configs/calogan-eplus.yaml}
[ "$#" -gt 0 ] && shift
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"

: "${SLURM_JOB_ID:?slurm/train.sh runs inside a SLURM allocation: sbatch slurm/train.sh [CONFIG] [ARGS]}"
: "${SLURM_JOB_NODELIST:?SLURM_JOB_NODELIST is not set}"

# shellcheck source=cluster/slurm_env.sh
source cluster/slurm_env.sh train.sh
[ -f "$CONFIG" ] || { echo "train.sh: config not found: $CONFIG" >&2; exit 2; }

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
NNODES=${#NODES[@]}
HEAD=${NODES[0]}
PORT=${RAY_PORT:-6379}

# Resources per node as SLURM granted them. SLURM_GPUS_PER_NODE may read "a100:4": keep the count.
GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-0}}
GPUS_PER_NODE=${GPUS_PER_NODE##*:}
[[ "$GPUS_PER_NODE" =~ ^[0-9]+$ ]] || GPUS_PER_NODE=0
CPUS_PER_NODE=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}

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
RAY_TMP=${GANSIM_RAY_TMP:-/tmp/ray-gansim-$SLURM_JOB_ID}

HEAD_IP=${RAY_HEAD_IP:-$(srun --nodes=1 --ntasks=1 --nodelist="$HEAD" --overlap hostname --ip-address | awk '{print $1}')}
ADDRESS="$HEAD_IP:$PORT"

# Token authentication: a random per-job token, readable only by the job owner, on storage all nodes see.
if [ "${GANSIM_RAY_AUTH:-token}" = "token" ]; then
  TOKEN_FILE="$OUT/.ray-auth-token-$SLURM_JOB_ID"
  (umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' > "$TOKEN_FILE")
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$TOKEN_FILE"
else
  export RAY_AUTH_MODE=disabled
  TOKEN_FILE=""
fi

read -r -a EXTRA_START <<< "${GANSIM_RAY_START_ARGS:-}"
START_ARGS=(--num-cpus="$CPUS_PER_NODE" --num-gpus="$GPUS_PER_NODE" --temp-dir="$RAY_TMP" "${EXTRA_START[@]}")
TRAIN_ARGS=(train --config "$CONFIG" --workers "$WORKERS" --gpus-per-worker "$GPW" --cpus-per-worker "$CPW"
            --out "$OUT" "$@")

echo "train.sh: job $SLURM_JOB_ID, $NNODES node(s) [${NODES[*]}], head $HEAD ($ADDRESS)"
echo "train.sh: $WORKERS worker(s) x $GPW GPU / $CPW CPU; $GPUS_PER_NODE GPU(s) and $CPUS_PER_NODE CPU(s) per node"
echo "train.sh: outputs and checkpoints in $OUT; Ray auth ${RAY_AUTH_MODE}"

STEP_PIDS=()
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT TERM INT
  echo "train.sh: stopping Ray (exit code $rc)"
  # Ending the srun steps ends each node's `ray start --block`, which takes its raylet/GCS down with it.
  for pid in "${STEP_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STEP_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [ -n "${TOKEN_FILE:-}" ] && rm -f "$TOKEN_FILE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

wait_for_nodes() {  # wait until $1 Ray nodes are alive (the driver check uses the same token)
  local want=$1 deadline=$((SECONDS + ${GANSIM_RAY_WAIT:-180}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if python - "$ADDRESS" "$want" <<'EOF' 2>/dev/null
import sys
import ray
ray.init(address=sys.argv[1], logging_level="error", log_to_driver=False)
alive = sum(1 for n in ray.nodes() if n["Alive"])
sys.exit(0 if alive >= int(sys.argv[2]) else 1)
EOF
    then
      return 0
    fi
    sleep 3
  done
  echo "train.sh: timed out waiting for $want Ray node(s) at $ADDRESS" >&2
  return 1
}

if [ "${GANSIM_RAY_LAUNCH:-start}" = "symmetric" ]; then
  # Every node runs the same command; the node owning $HEAD_IP becomes the head and runs gansim.
  srun --nodes="$NNODES" --ntasks-per-node=1 \
    ray symmetric-run --address "$ADDRESS" --min-nodes "$NNODES" "${START_ARGS[@]}" \
    -- env RAY_ADDRESS="$ADDRESS" gansim "${TRAIN_ARGS[@]}"
  exit $?
fi

srun --nodes=1 --ntasks=1 --nodelist="$HEAD" --overlap \
  ray start --head --node-ip-address="$HEAD_IP" --port="$PORT" --include-dashboard=false --block \
  "${START_ARGS[@]}" &
STEP_PIDS+=($!)
wait_for_nodes 1
for node in "${NODES[@]:1}"; do
  WORKER_IP_ARGS=()
  [ -n "${GANSIM_WORKER_IP:-}" ] && WORKER_IP_ARGS=(--node-ip-address="$GANSIM_WORKER_IP")
  srun --nodes=1 --ntasks=1 --nodelist="$node" --overlap \
    ray start --address="$ADDRESS" --block "${WORKER_IP_ARGS[@]}" "${START_ARGS[@]}" &
  STEP_PIDS+=($!)
done
wait_for_nodes "$NNODES"
echo "train.sh: Ray cluster with $NNODES node(s) is up"

export RAY_ADDRESS="$ADDRESS"
set +e
gansim "${TRAIN_ARGS[@]}"
rc=$?
set -e
exit "$rc"
