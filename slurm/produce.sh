#!/usr/bin/env bash
# Mass production over a multi-node allocation: one MPI rank per GPU (or per core group), started by srun.
#
#   sbatch slurm/produce.sh runs/export/generator.pt 1e9 /scratch/$USER/prod [extra gansim produce options]
#   sbatch --nodes=16 --export=ALL,LAYOUT=single slurm/produce.sh gen.pt 1e9 /scratch/$USER/prod
#
# srun needs an MPI plugin matching the MPI that mpi4py was built against: with Open MPI >= 4 use
# --mpi=pmix (check `srun --mpi=list`); MPICH-family builds usually take --mpi=pmi2. Set SRUN_MPI to change it.
# The run is resumable: resubmitting the same command finishes only the missing chunks (add
# --dependency=afterany:JOBID to chain jobs past the time limit).
#SBATCH --job-name=gansim-produce
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=gansim-produce-%j.out
set -euo pipefail

GENERATOR=${1:?usage: sbatch slurm/produce.sh GENERATOR EVENTS OUTDIR [gansim produce options]}
EVENTS=${2:?events, e.g. 1e9}
OUT=${3:?output directory on a parallel filesystem}
shift 3
LAYOUT=${LAYOUT:-shards}
SRUN_MPI=${SRUN_MPI:-pmix}
VENV=${VENV:-.venv}
if [ "$LAYOUT" = single ]; then VENV=${PHDF5_VENV:-.venv-phdf5}; fi

DEVICE=cpu
if [ -n "${SLURM_GPUS_PER_NODE:-}${SLURM_GPUS_ON_NODE:-}" ]; then DEVICE=cuda; fi
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

echo "gansim produce: ${SLURM_NNODES:-1} nodes x ${SLURM_NTASKS_PER_NODE:-1} ranks, device $DEVICE, layout $LAYOUT"
srun --mpi="$SRUN_MPI" --kill-on-bad-exit=1 --cpu-bind=cores \
  "$VENV/bin/gansim" produce --generator "$GENERATOR" --events "$EVENTS" --out "$OUT" \
  --layout "$LAYOUT" --device "$DEVICE" "$@"
