#!/usr/bin/env bash
# Mass production over a multi-node allocation: one MPI rank per task (per GPU on GPU nodes), started by srun.
#
#   sbatch slurm/produce.sh GENERATOR EVENTS OUTDIR [extra `gansim produce` options]   (submit from the repo root)
#   sbatch slurm/produce.sh runs/export/generator.pt 1e9 /scratch/$USER/prod
#   sbatch --nodes=8 --ntasks-per-node=16 --gpus-per-node=0 --cpus-per-task=4 slurm/produce.sh gen.pt 1e9 /scratch/prod
#   sbatch --export=ALL,LAYOUT=single slurm/produce.sh gen.pt 1e9 /scratch/$USER/prod   (parallel HDF5, one file)
#
# The run is resumable: resubmitting the same command finishes only the missing chunks (chain past the time
# limit with --dependency=afterany:JOBID). The bytes do not depend on the number of nodes or ranks.
#
# Device: cuda when the allocation has GPUs on each node (SLURM_GPUS_ON_NODE / SLURM_GPUS_PER_NODE > 0, ranks on
# a node share its GPUs round-robin), else cpu; --gpus-per-node=0 means cpu. GANSIM_DEVICE=cpu|cuda overrides.
# The device type is part of the production plan: resume with the same one.
#
# Variables (all optional):
#   GANSIM_VENV        Python environment to activate (default: $SLURM_SUBMIT_DIR/.venv; with LAYOUT=single
#                      $SLURM_SUBMIT_DIR/.venv-phdf5, see cluster/setup_phdf5.sh)
#   GANSIM_ENV_SCRIPT  sourced first, e.g. `module load` lines (see cluster/README.md)
#   LAYOUT             shards (default) or single
#   GANSIM_DEVICE      cpu or cuda (default: from the allocation, see above)
#   GANSIM_LAUNCHER    srun (default) or mpiexec. srun starts the ranks through SLURM's PMIx (SRUN_MPI, default
#                      pmix; `srun --mpi=list` shows what the site has; MPICH-family builds usually want pmi2).
#                      mpiexec (the fallback when srun's MPI plugin does not fit the MPI that mpi4py uses) runs
#                      the MPI's own launcher inside the allocation: SLURM_NTASKS ranks on the allocated nodes.
#   OMP_NUM_THREADS    threads per rank (default: --cpus-per-task)
#
#SBATCH --job-name=gansim-produce
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

usage="usage: sbatch slurm/produce.sh GENERATOR EVENTS OUTDIR [gansim produce options]   (--help for more)"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^#SBATCH/{/^#SBATCH/d;s/^# \{0,1\}//;p}' "$0"
  exit 0
fi
[ "$#" -ge 3 ] || { echo "produce.sh: $usage" >&2; exit 2; }
GENERATOR=$1
EVENTS=$2
OUT=$3
shift 3
SUBMIT_DIR=${SLURM_SUBMIT_DIR:-$PWD}
cd "$SUBMIT_DIR"

: "${SLURM_JOB_ID:?slurm/produce.sh runs inside a SLURM allocation: $usage}"
[ -f cluster/slurm_env.sh ] || { echo "produce.sh: submit from the gansim repository root (no cluster/ in $PWD)" >&2; exit 2; }
[ -f "$GENERATOR" ] || { echo "produce.sh: generator not found: $GENERATOR" >&2; exit 2; }

LAYOUT=${LAYOUT:-shards}
case "$LAYOUT" in
  shards) ;;
  single) export GANSIM_VENV=${GANSIM_VENV:-$SUBMIT_DIR/.venv-phdf5} ;;
  *) echo "produce.sh: LAYOUT must be shards or single, not '$LAYOUT'" >&2; exit 2 ;;
esac
# shellcheck source=cluster/slurm_env.sh
source cluster/slurm_env.sh produce.sh gansim python || exit 2

GPUS=$(gansim_gpus_per_node)
if [ -n "${GANSIM_DEVICE:-}" ]; then
  DEVICE=$GANSIM_DEVICE
elif [ "$GPUS" -gt 0 ]; then
  DEVICE=cuda
else
  DEVICE=cpu
fi
case "$DEVICE" in
  cpu) ;;
  cuda)
    python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || {
      echo "produce.sh: device cuda, but torch in $(command -v python) sees no GPU here (CPU build of torch?" \
           "see cluster/README.md; or submit with --gpus-per-node=0)" >&2
      exit 2
    } ;;
  *) echo "produce.sh: GANSIM_DEVICE must be cpu or cuda, not '$DEVICE'" >&2; exit 2 ;;
esac
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(gansim_cpus_per_task)}

NTASKS=${SLURM_NTASKS:-${SLURM_NNODES:-1}}
PRODUCE=(gansim produce --generator "$GENERATOR" --events "$EVENTS" --out "$OUT" --layout "$LAYOUT"
         --device "$DEVICE" --no-progress "$@")
LAUNCHER=${GANSIM_LAUNCHER:-srun}
echo "produce.sh: job $SLURM_JOB_ID, ${SLURM_NNODES:-1} node(s), $NTASKS rank(s), device $DEVICE ($GPUS GPU(s) per" \
     "node), $OMP_NUM_THREADS thread(s) per rank, layout $LAYOUT, launcher $LAUNCHER"
case "$LAUNCHER" in
  srun)
    exec srun --mpi="${SRUN_MPI:-pmix}" --kill-on-bad-exit=1 "${PRODUCE[@]}" ;;
  mpiexec)
    # Open MPI's mpiexec reads the allocation from SLURM_* and starts its daemons with srun.
    exec mpiexec -n "$NTASKS" "${PRODUCE[@]}" ;;
  *) echo "produce.sh: GANSIM_LAUNCHER must be srun or mpiexec, not '$LAUNCHER'" >&2; exit 2 ;;
esac
