#!/usr/bin/env bash
# The jet-image path in about 4 minutes on a 2-core CPU: Pythia8 + FastJet W' -> WZ and QCD jets ->
# LAGAN under Ray Train -> export -> evaluate (jet mass, pT, tau21 per class, average images, AUC) -> produce.
# Usage: scripts/demo_jets.sh [OUT]   (or `make demo DEMO_JETS=1`, which runs it after the calorimeter demo).
# Needs the jets extra (pythia8mc, fastjet): pip install 'gansim[jets]'.
set -euo pipefail
OUT=${1:-runs/demo/jets}
MPIEXEC=${MPIEXEC:-mpiexec}
MPI_FLAGS=${MPI_FLAGS:---oversubscribe}
[ "$(id -u)" = 0 ] && MPI_FLAGS="$MPI_FLAGS --allow-run-as-root"
mkdir -p "$OUT"
start=$SECONDS
step() { printf '\n== jets %s  (%ds) ==\n' "$1" $((SECONDS - start)); }

step "1/5 simulate: Pythia8 W' -> WZ (signal) and QCD dijets (background), anti-kt R=1.0 trimmed, 25x25 images"
gansim simulate jets --process both --events 1000 --seed 1 --workers 2 --out "$OUT/jets.h5"
gansim simulate jets --process both --events 400 --seed 2 --workers 2 --out "$OUT/jets-heldout.h5"
gansim inspect "$OUT/jets.h5"

step "2/5 train: LAGAN (tiny, configs/lagan-debug.yaml) under Ray Train, 300 steps"
gansim train --config configs/lagan-debug.yaml --workers 1 --data "$OUT/jets.h5" --out "$OUT/train" \
  --epochs 12 --set train.steps_per_epoch=25

step "3/5 export the generator (EMA weights)"
gansim export "$OUT/train" --out "$OUT/lagan.pt"

step "4/5 evaluate against held-out Pythia jets (generator conditioned on the reference's labels)"
gansim evaluate --reference "$OUT/jets-heldout.h5" --generator "$OUT/lagan.pt" --out "$OUT/report" --seed 1

step "5/5 produce: 2 MPI ranks, sharded HDF5 + virtual dataset, 30% signal"
# shellcheck disable=SC2086  # MPI_FLAGS is a list of flags
"$MPIEXEC" $MPI_FLAGS -n 2 gansim produce --generator "$OUT/lagan.pt" --events 5000 --chunk-size 1000 \
  --signal-fraction 0.3 --out "$OUT/produced" --seed 7 --no-progress
gansim inspect "$OUT/produced/dataset.h5" --deep

step "done"
echo "jet report:  $OUT/report/index.md (average images per class: $OUT/report/jet_images.png)"
echo "jet dataset: $OUT/produced/dataset.h5"
