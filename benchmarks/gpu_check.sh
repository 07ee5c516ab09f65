#!/usr/bin/env bash
# GPU readiness of `gansim produce` (issue 11, part 4), one prepared script, <= 8 minutes on one H200:
#   1. environment: torch/CUDA/device, which optional packages exist (no Ray or Optuna is needed)
#   2. bare generation vs end-to-end produce at several batch sizes, float32 / --amp / --amp --compile,
#      default-size CaloGAN generator (speed only: random weights), tables in $OUT
#   3. bit-exactness on the device: 1 process vs 2 MPI ranks give the same chunk checksums (when mpiexec exists)
#   4. AMP against float32: the same plan produced both ways, compared with `gansim evaluate` (classifier AUC;
#      boosted trees only when scikit-learn is installed), or by summary statistics when scipy/matplotlib are absent
#
#   bash benchmarks/gpu_check.sh                 # on a GPU machine (device cuda)
#   bash benchmarks/gpu_check.sh --device cpu    # dry rehearsal on a CPU machine: small sizes, same steps
#
# Variables: GANSIM_PYTHON (interpreter; default .venv/bin/python, else python3), OUT (results directory; default
# benchmarks/results/gpu_check), EVENTS (events per speed measurement), EVAL_EVENTS, BATCHES, MODES.
# Needs: torch, numpy, h5py, PyYAML (gansim itself); optional: mpi4py + mpiexec, scipy + matplotlib (evaluate),
# scikit-learn (boosted trees), zstandard + hdf5plugin (zstd; gzip is used otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE=${2:?--device needs cpu or cuda}; fi
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check: --device must be cuda or cpu" >&2; exit 2 ;; esac
PY=${GANSIM_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  EVENTS=${EVENTS:-2000000}; EVAL_EVENTS=${EVAL_EVENTS:-200000}; BATCHES=${BATCHES:-16384,65536,262144}
  MODES=${MODES:-float32,amp,amp+compile}; STEP_TIMEOUT=200
else
  EVENTS=${EVENTS:-4096}; EVAL_EVENTS=${EVAL_EVENTS:-2000}; BATCHES=${BATCHES:-512,2048}
  MODES=${MODES:-float32,amp}; STEP_TIMEOUT=300
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GANSIM_PROGRESS=off
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.md"; }
: > "$OUT/summary.md"

# -- 1. environment -------------------------------------------------------------------------------------------
"$PY" - "$DEVICE" <<'EOF' | tee -a "$OUT/summary.md"
import importlib, sys
import torch
dev = sys.argv[1]
if dev == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device visible to torch " + torch.__version__)
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, device "
      f"{torch.cuda.get_device_name(0) if dev == 'cuda' else 'cpu (' + torch.backends.cpu.get_cpu_capability() + ')'}")
for mod in ("h5py", "yaml", "mpi4py", "scipy", "matplotlib", "sklearn", "zstandard", "hdf5plugin", "ray", "optuna"):
    try:
        importlib.import_module(mod)
        print(f"  {mod}: yes")
    except ImportError:
        print(f"  {mod}: no")
EOF
have() { "$PY" -c "import $1" 2>/dev/null; }
COMP=gzip
if have zstandard && have hdf5plugin; then COMP=zstd; fi

# -- 2. bare vs end-to-end, batch sizes x precision modes ---------------------------------------------------------
log "speed: $EVENTS events per measurement, batches $BATCHES, modes $MODES, compression $COMP"
timeout "$STEP_TIMEOUT" "$PY" benchmarks/bench_produce.py device --device "$DEVICE" --events "$EVENTS" \
  --batches "$BATCHES" --modes "$MODES" --compressions "$COMP" --out "$OUT/speed.md" 2>&1 | grep -v Warning \
  | tee -a "$OUT/summary.md" || log "speed step failed or timed out (rc $?)"

# -- 3. ranks do not change the bytes on this device -----------------------------------------------------------------
GEN="$OUT/gen.pt"
"$PY" - "$GEN" <<'EOF'
import sys
import torch
from gansim.config import load_config
from gansim.models.artifact import save_generator
from gansim.models.registry import build_generator
cfg = load_config("configs/calogan-eplus.yaml")
torch.manual_seed(0)
save_generator(sys.argv[1], build_generator(cfg), cfg)
EOF
B=${BATCHES##*,}
prod() { timeout "$STEP_TIMEOUT" "$PY" -m gansim.cli produce -g "$GEN" -n "$EVAL_EVENTS" --seed "$1" -o "$2" \
  --device "$DEVICE" --batch-size "$B" --compression "$COMP" --overwrite --no-progress "${@:3}"; }
sums() { "$PY" -c "import json,sys; print(json.dumps({k: v['sha256'] for k, v in json.load(open(sys.argv[1]))['chunks'].items()}, sort_keys=True))" "$1/manifest.json"; }
prod 1 "$OUT/fp32" --chunk-size $((EVAL_EVENTS / 4)) | tail -1 | tee -a "$OUT/summary.md"
MPIEXEC=$(dirname "$PY")/mpiexec; [ -x "$MPIEXEC" ] || MPIEXEC=$(command -v mpiexec || true)
if [ -n "$MPIEXEC" ] && have mpi4py; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout "$STEP_TIMEOUT" "$MPIEXEC" --oversubscribe -n 2 \
    "$PY" -m gansim.cli produce -g "$GEN" -n "$EVAL_EVENTS" --seed 1 -o "$OUT/fp32-2ranks" --device "$DEVICE" \
    --batch-size "$B" --compression "$COMP" --chunk-size $((EVAL_EVENTS / 4)) --overwrite --no-progress | tail -1
  if [ "$(sums "$OUT/fp32")" = "$(sums "$OUT/fp32-2ranks")" ]; then log "bit-exact: 1 process == 2 MPI ranks on $DEVICE"
  else log "NOT bit-exact: 1 process != 2 MPI ranks on $DEVICE"; fi
else
  log "bit-exactness across ranks: skipped (no mpiexec / mpi4py)"
fi

# -- 4. AMP against float32 -------------------------------------------------------------------------------------------
prod 2 "$OUT/amp" --amp | tail -1 | tee -a "$OUT/summary.md"
if have scipy && have matplotlib; then
  TREES=true; have sklearn || TREES=false
  timeout "$STEP_TIMEOUT" "$PY" -m gansim.cli evaluate --reference "$OUT/fp32/dataset.h5" \
    --generated "$OUT/amp/dataset.h5" --out "$OUT/eval-amp-vs-fp32" --quiet --set "eval.boosted_trees=$TREES" \
    --device "$DEVICE" | tail -5 | tee -a "$OUT/summary.md" || log "evaluate failed (rc $?)"
  "$PY" - "$OUT/eval-amp-vs-fp32/report.json" <<'EOF' | tee -a "$OUT/summary.md"
import json, sys
r = json.load(open(sys.argv[1]))
def walk(d, path=""):
    for k, v in d.items():
        if isinstance(v, dict):
            walk(v, f"{path}{k}.")
        elif "auc" in k.lower() or "sigma" in k.lower():
            print(f"  {path}{k} = {v}")
walk(r.get("classifier", r))
EOF
else
  log "evaluate skipped (needs scipy + matplotlib); comparing summary statistics instead"
  "$PY" - "$OUT/fp32" "$OUT/amp" <<'EOF' | tee -a "$OUT/summary.md"
import sys
import numpy as np
from gansim.produce.reader import open_dataset
a, b = open_dataset(sys.argv[1]), open_dataset(sys.argv[2])
for key in ("layer_0", "layer_1", "layer_2"):
    sa, sb = a[key][:].reshape(len(a), -1).sum(1), b[key][:].reshape(len(b), -1).sum(1)
    print(f"  {key}: mean sum fp32 {sa.mean():.4g} amp {sb.mean():.4g} (rel {abs(sb.mean() / sa.mean() - 1):.2e}); "
          f"std {sa.std():.4g} vs {sb.std():.4g}")
EOF
fi
log "done: tables and reports in $OUT (copy the figures into benchmarks/results/produce.md)"
