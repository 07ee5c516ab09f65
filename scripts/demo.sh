#!/usr/bin/env bash
# The main job on the embedded default, small enough for a 2-core CPU in minutes:
# simulate -> inspect -> train (Ray Train, 2 DDP workers) -> export -> evaluate -> produce (MPI, 2 ranks).
# Usage: scripts/demo.sh [OUT]   (make demo DEMO_DIR=OUT); DEMO_JETS=1 also runs the jet-image path.
set -euo pipefail
OUT=${1:-runs/demo}
MPIEXEC=${MPIEXEC:-mpiexec}
MPI_FLAGS=${MPI_FLAGS:---oversubscribe}
[ "$(id -u)" = 0 ] && MPI_FLAGS="$MPI_FLAGS --allow-run-as-root"
mkdir -p "$OUT"
start=$SECONDS
step() { printf '\n== %s  (%ds) ==\n' "$1" $((SECONDS - start)); }

step "1/6 simulate: built-in Pb/LAr calorimeter simulator, e+ 1-100 GeV"
gansim simulate calo --particle eplus --events 10000 --seed 1 --out "$OUT/eplus.h5"
gansim simulate calo --particle eplus --events 4000 --seed 2 --out "$OUT/eplus-heldout.h5"

step "2/6 inspect"
gansim inspect "$OUT/eplus.h5"

step "3/6 train: calo-mlp under Ray Train, 2 DDP workers (gloo); rerun resumes"
gansim train --config configs/demo.yaml --workers 2 --data "$OUT/eplus.h5" --out "$OUT/train"

step "4/6 export the generator (EMA weights)"
gansim export "$OUT/train" --out "$OUT/generator.pt"

step "5/6 evaluate against held-out reference showers"
gansim evaluate --reference "$OUT/eplus-heldout.h5" --generator "$OUT/generator.pt" --events 4000 \
  --out "$OUT/report" --seed 1

step "6/6 produce: 2 MPI ranks, sharded HDF5 + virtual dataset"
# shellcheck disable=SC2086  # MPI_FLAGS is a list of flags
"$MPIEXEC" $MPI_FLAGS -n 2 gansim produce --generator "$OUT/generator.pt" --events 50000 --chunk-size 8192 \
  --out "$OUT/produced" --seed 7 --no-progress
gansim inspect "$OUT/produced/dataset.h5" --deep

if [ "${DEMO_JETS:-0}" = 1 ]; then
  step "jets: Pythia8 + FastJet -> LAGAN"
  bash scripts/demo_jets.sh "$OUT/jets"
fi

step "done"
echo "report:      $OUT/report/index.md (plots: $OUT/report/*.png)"
echo "tensorboard: tensorboard --logdir $OUT/train/tb"
echo "dataset:     $OUT/produced/dataset.h5"
