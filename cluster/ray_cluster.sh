# One Ray cluster over the nodes of a SLURM allocation: the single Ray start-up used by slurm/train.sh,
# slurm/tune.sh and interactive allocations. Source it, then call the functions:
#
#   salloc --nodes=2 --gpus-per-node=4 --time=2:00:00            # (batch scripts do the same inside the job)
#   source cluster/ray_cluster.sh && gansim_ray_start            # exports RAY_ADDRESS and the auth settings
#   gansim train --config configs/calogan-eplus.yaml --workers 8 --gpus-per-worker 1
#   gansim_ray_stop
#
# gansim_ray_start runs `ray start --head` on the first node and `ray start --address` on every other node,
# each as a background `srun --overlap` step with --block (ending the step ends exactly that node's Ray), then
# polls the head until every node has joined (no fixed sleep; fails early when a step dies, and after
# GANSIM_RAY_WAIT seconds, default 180). It returns non-zero on failure (it never exits your shell).
# gansim_ray_stop ends those steps (TERM, then KILL after 30 s) and deletes the auth token.
#
# Variables (all optional):
#   GANSIM_RAY_STATE       per-job directory for the token, env.sh and the Ray logs; must be on storage every node
#                          reads when token auth is on (default: ~/.gansim/ray/$SLURM_JOB_ID; the batch scripts
#                          use <out>/.ray/$SLURM_JOB_ID)
#   GANSIM_RAY_AUTH        token (default: a random per-job token in a 0600 file, RAY_AUTH_MODE=token for every
#                          node and the driver) or disabled (trusted private network only)
#   RAY_PORT               GCS port of the head (default 6379; give concurrent jobs on one node different ports)
#   RAY_HEAD_IP            head address (default: `hostname --ip-address`, else the first of `hostname -I`, on
#                          the first node)
#   GANSIM_RAY_TMP         node-local Ray temp dir prefix; node i uses <prefix>-i (default
#                          /tmp/ray-gansim-$SLURM_JOB_ID; keep it short: Ray's socket paths must fit in 107 bytes)
#   GANSIM_RAY_START_ARGS  extra `ray start` arguments for every node, e.g. "--object-store-memory=20000000000"
#   GANSIM_RAY_WAIT        seconds to wait for all nodes to join (default 180)
# Resources per Ray node: --num-cpus = CPUs per task, --num-gpus = GPUs per node, as SLURM granted them.
# shellcheck shell=bash

_GANSIM_CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=cluster/slurm_env.sh
source "$_GANSIM_CLUSTER_DIR/slurm_env.sh" ray_cluster.sh ray || return 2

GANSIM_RAY_PIDS=()

gansim_ray_start() {
  local me=gansim_ray_start
  if [ -z "${SLURM_JOB_ID:-}" ] || [ -z "${SLURM_JOB_NODELIST:-}" ]; then
    echo "$me: run inside a SLURM allocation (sbatch or salloc)" >&2
    return 2
  fi
  if [ "${#GANSIM_RAY_PIDS[@]}" -gt 0 ]; then
    echo "$me: this shell already started Ray ($RAY_ADDRESS); call gansim_ray_stop first" >&2
    return 2
  fi
  local nodes head port head_ip cpus gpus state tmp node
  mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
  [ "${#nodes[@]}" -gt 0 ] || { echo "$me: no nodes in SLURM_JOB_NODELIST=$SLURM_JOB_NODELIST" >&2; return 2; }
  head=${nodes[0]}
  port=${RAY_PORT:-6379}
  cpus=$(gansim_cpus_per_task)
  gpus=$(gansim_gpus_per_node)
  state=${GANSIM_RAY_STATE:-$HOME/.gansim/ray/$SLURM_JOB_ID}
  tmp=${GANSIM_RAY_TMP:-/tmp/ray-gansim-$SLURM_JOB_ID}
  (umask 077 && mkdir -p "$state") || { echo "$me: cannot create $state" >&2; return 2; }
  chmod 700 "$state"
  head_ip=${RAY_HEAD_IP:-$(srun --nodes=1 --ntasks=1 --nodelist="$head" --overlap \
    bash -c 'hostname --ip-address 2>/dev/null || hostname -I' | awk '{print $1}')}
  [ -n "$head_ip" ] || { echo "$me: could not find the address of $head (set RAY_HEAD_IP)" >&2; return 2; }

  if [ "${GANSIM_RAY_AUTH:-token}" = token ]; then
    # A fresh random token per job; only the job owner can read it (0600 in a 0700 directory).
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/auth_token")
    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$state/auth_token"
  elif [ "${GANSIM_RAY_AUTH}" = disabled ]; then
    export RAY_AUTH_MODE=disabled
    unset RAY_AUTH_TOKEN_PATH
  else
    echo "$me: GANSIM_RAY_AUTH must be token or disabled, not '$GANSIM_RAY_AUTH'" >&2
    return 2
  fi
  export RAY_ADDRESS="$head_ip:$port"
  local extra=()
  read -r -a extra <<< "${GANSIM_RAY_START_ARGS:-}"
  # One temp dir per node (suffix = node index): nodes that share a host (the local test cluster) must not
  # share a Ray session directory, or each node's log monitor would forward every worker's output.
  local args=(--num-cpus="$cpus" --num-gpus="$gpus" --disable-usage-stats "${extra[@]}")

  echo "$me: ${#nodes[@]} node(s) [${nodes[*]}], head $head at $RAY_ADDRESS, $cpus CPU(s) and $gpus GPU(s) per node," \
       "auth $RAY_AUTH_MODE; Ray logs in $state"
  srun --nodes=1 --ntasks=1 --nodelist="$head" --overlap \
    ray start --head --node-ip-address="$head_ip" --port="$port" --include-dashboard=false --block \
    --temp-dir="$tmp-0" "${args[@]}" > "$state/ray-$head.log" 2>&1 &
  GANSIM_RAY_PIDS+=($!)
  local i
  for ((i = 1; i < ${#nodes[@]}; i++)); do
    node=${nodes[$i]}
    srun --nodes=1 --ntasks=1 --nodelist="$node" --overlap \
      ray start --address="$RAY_ADDRESS" --block --temp-dir="$tmp-$i" "${args[@]}" > "$state/ray-$node.log" 2>&1 &
    GANSIM_RAY_PIDS+=($!)
  done
  GANSIM_RAY_STATE_DIR=$state
  {
    echo "export RAY_ADDRESS=$RAY_ADDRESS RAY_AUTH_MODE=$RAY_AUTH_MODE"
    [ "$RAY_AUTH_MODE" = token ] && echo "export RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH"
  } > "$state/env.sh"

  if ! python - "$RAY_ADDRESS" "${#nodes[@]}" "${GANSIM_RAY_WAIT:-180}" "${GANSIM_RAY_PIDS[@]}" <<'EOF'
"""Poll the head until N Ray nodes are alive; give up when a `ray start` step has ended or at the deadline."""
import socket
import sys
import time
from pathlib import Path

address, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pids = [int(p) for p in sys.argv[4:]]
host, port = address.rsplit(":", 1)
deadline = time.monotonic() + timeout


def step_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


connected, alive = False, 0
while time.monotonic() < deadline:
    dead = [p for p in pids if not step_alive(p)]
    if dead:
        print(f"gansim_ray_start: a `ray start` step ended early (srun pid {dead[0]})", file=sys.stderr)
        sys.exit(1)
    if not connected:
        try:  # the GCS port answers before ray.init can succeed; do not let ray.init block on a dead address
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError:
            time.sleep(1)
            continue
        import ray

        ray.init(address=address, logging_level="error", log_to_driver=False)
        connected = True
    alive = sum(1 for n in ray.nodes() if n["Alive"])
    if alive >= want:
        sys.exit(0)
    time.sleep(1)
print(f"gansim_ray_start: {alive} of {want} Ray node(s) joined within {timeout:.0f} s", file=sys.stderr)
sys.exit(1)
EOF
  then
    local f
    for f in "$state"/ray-*.log; do
      echo "---- $f (last lines)" >&2
      tail -n 15 "$f" >&2
    done
    gansim_ray_stop
    return 1
  fi
  echo "$me: Ray cluster with ${#nodes[@]} node(s) is up at $RAY_ADDRESS"
}

gansim_ray_stop() {
  local pid i alive
  # The token goes first: under scancel, SLURM may SIGKILL this shell before the steps have ended.
  if [ -n "${GANSIM_RAY_STATE_DIR:-}" ]; then
    rm -f "$GANSIM_RAY_STATE_DIR/auth_token" "$GANSIM_RAY_STATE_DIR/env.sh"
  fi
  [ "${#GANSIM_RAY_PIDS[@]}" -gt 0 ] || return 0
  # Ending an srun step ends that node's `ray start --block`, which takes its raylet (and the GCS) down.
  # Workers first, the head last.
  for ((i = ${#GANSIM_RAY_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${GANSIM_RAY_PIDS[$i]}" 2>/dev/null || true
  done
  for i in $(seq 300); do
    alive=0
    for pid in "${GANSIM_RAY_PIDS[@]}"; do
      if kill -0 "$pid" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$pid/stat" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${GANSIM_RAY_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  GANSIM_RAY_PIDS=()
  echo "gansim_ray_stop: Ray stopped"
}
