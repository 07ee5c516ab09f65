#!/usr/bin/env bash
# Stop the Ray cluster that cluster/ray_start.sh started in this allocation (only its own srun steps).
set -euo pipefail
STATE=${GANSIM_RAY_STATE:-$HOME/.gansim/ray-${SLURM_JOB_ID:?run inside the allocation or set GANSIM_RAY_STATE}}
[ -f "$STATE/pids" ] || { echo "ray_stop.sh: no Ray started from $STATE" >&2; exit 1; }
# Ending each srun step ends that node's `ray start --block` and its raylet; the head goes last.
tac "$STATE/pids" | while read -r pid; do
  kill -TERM "$pid" 2>/dev/null || true
done
sleep 3
rm -f "$STATE/auth_token" "$STATE/pids"
echo "ray_stop.sh: stopped Ray of $STATE"
