#!/usr/bin/env bash
# The main job on the embedded default, small enough for a 2-core CPU in minutes:
# simulate -> inspect -> train -> export -> evaluate -> produce.
set -euo pipefail
OUT=${1:-runs/demo}
mkdir -p "$OUT"
echo "== 1/2 simulate: built-in calorimeter shower simulator (e+) =="
gansim simulate calo --particle eplus --events 10000 --seed 1 --out "$OUT/eplus.h5"
gansim simulate calo --particle eplus --events 4000 --seed 2 --out "$OUT/eplus-heldout.h5"
gansim inspect "$OUT/eplus.h5"
echo "demo: training, evaluation and production steps are added as their issues land"
