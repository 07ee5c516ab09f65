# Sourced by slurm/train.sh, slurm/tune.sh, slurm/produce.sh and cluster/ray_cluster.sh: loads the site
# environment, activates gansim's venv, checks the commands the caller needs, and defines helpers that read
# the allocation. Safe to source in an interactive shell (it returns, never exits, and sets no shell options).
#
#   source cluster/slurm_env.sh NAME [COMMAND ...] || exit 2   # NAME: the caller, for messages;
#                                                               # COMMANDs that must be on PATH (default: gansim)
# Variables: GANSIM_ENV_SCRIPT (sourced first, e.g. `module load` lines; see cluster/README.md),
#            GANSIM_VENV (default ./.venv; not activated when it does not exist, e.g. a site module provides gansim).
# shellcheck shell=bash

# GPUs SLURM granted per node, as a plain count: SLURM_GPUS_ON_NODE, else SLURM_GPUS_PER_NODE ("4", "a100:4",
# "gpu:a100:4"); 0 when neither is set or the allocation has none (e.g. --gpus-per-node=0).
gansim_gpus_per_node() {
  local v=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-0}}
  v=${v%%,*}
  v=${v##*:}
  [[ "$v" =~ ^[0-9]+$ ]] || v=0
  echo "$((10#$v))"
}

# CPUs per task of this allocation (what one Ray node or MPI rank may use).
gansim_cpus_per_task() {
  local v=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || v=1
  echo "$v"
}

_gansim_env() {
  local caller=$1 cmd venv
  shift
  if [ -n "${GANSIM_ENV_SCRIPT:-}" ]; then
    # shellcheck disable=SC1090
    source "$GANSIM_ENV_SCRIPT" || { echo "$caller: GANSIM_ENV_SCRIPT=$GANSIM_ENV_SCRIPT failed" >&2; return 2; }
  fi
  venv=${GANSIM_VENV:-$PWD/.venv}
  if [ -f "$venv/bin/activate" ]; then
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
  elif [ -n "${GANSIM_VENV:-}" ]; then
    echo "$caller: GANSIM_VENV=$GANSIM_VENV is not a Python environment (no bin/activate)" >&2
    return 2
  fi
  [ "$#" -gt 0 ] || set -- gansim
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null || { echo "$caller: '$cmd' not found (set GANSIM_VENV, or run make venv)" >&2; return 2; }
  done
}

_gansim_env "${1:-gansim}" "${@:2}"
