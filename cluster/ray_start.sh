#!/usr/bin/env bash
# Start a Ray cluster over the nodes of an interactive SLURM allocation (salloc) and print how to use it.
#
#   salloc --nodes=2 --gpus-per-node=4 --time=2:00:00
#   source <(bash cluster/ray_start.sh)        # exports RAY_ADDRESS, RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH
#   gansim train --config configs/calogan-eplus.yaml --workers 8 --gpus-per-worker 1
#   bash cluster/ray_stop.sh
#
# State (pids, token, address) goes to $GANSIM_RAY_STATE (default ~/.gansim/ray-$SLURM_JOB_ID, must be on
# storage every node sees when token auth is on). Batch jobs use slurm/train.sh instead, which does the same
# inside the job and stops Ray on exit. Variables: RAY_PORT, RAY_HEAD_IP, GANSIM_RAY_AUTH, GANSIM_RAY_START_ARGS
# as in slurm/train.sh.
set -euo pipefail
: "${SLURM_JOB_ID:?run inside a SLURM allocation (salloc)}"
STATE=${GANSIM_RAY_STATE:-$HOME/.gansim/ray-$SLURM_JOB_ID}
mkdir -p "$STATE"
mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD=${NODES[0]}
PORT=${RAY_PORT:-6379}
HEAD_IP=${RAY_HEAD_IP:-$(srun --nodes=1 --ntasks=1 --nodelist="$HEAD" --overlap hostname --ip-address | awk '{print $1}')}
GPUS=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-0}}
GPUS=${GPUS##*:}
[[ "$GPUS" =~ ^[0-9]+$ ]] || GPUS=0
CPUS=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}
if [ "${GANSIM_RAY_AUTH:-token}" = "token" ]; then
  (umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' > "$STATE/auth_token")
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STATE/auth_token"
else
  export RAY_AUTH_MODE=disabled
fi
read -r -a EXTRA <<< "${GANSIM_RAY_START_ARGS:-}"
ARGS=(--num-cpus="$CPUS" --num-gpus="$GPUS" --temp-dir="/tmp/ray-gansim-$SLURM_JOB_ID" "${EXTRA[@]}")
: > "$STATE/pids"
nohup srun --nodes=1 --ntasks=1 --nodelist="$HEAD" --overlap ray start --head --node-ip-address="$HEAD_IP" \
  --port="$PORT" --include-dashboard=false --block "${ARGS[@]}" > "$STATE/head.log" 2>&1 &
echo $! >> "$STATE/pids"
sleep "${GANSIM_RAY_HEAD_WAIT:-10}"
for node in "${NODES[@]:1}"; do
  nohup srun --nodes=1 --ntasks=1 --nodelist="$node" --overlap ray start --address="$HEAD_IP:$PORT" --block \
    "${ARGS[@]}" > "$STATE/worker-$node.log" 2>&1 &
  echo $! >> "$STATE/pids"
done
{
  echo "export RAY_ADDRESS=$HEAD_IP:$PORT"
  echo "export RAY_AUTH_MODE=$RAY_AUTH_MODE"
  [ "$RAY_AUTH_MODE" = token ] && echo "export RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
  echo "export GANSIM_RAY_STATE=$STATE"
} | tee "$STATE/env.sh"
echo "# Ray: ${#NODES[@]} node(s) starting; check with: ray status --address $HEAD_IP:$PORT" >&2
