#!/usr/bin/env bash
# Provision .venv-phdf5: h5py built against parallel HDF5 (Open MPI) + mpi4py, for `gansim produce --layout single`.
#
# Usage: bash cluster/setup_phdf5.sh [VENV_DIR]      (default .venv-phdf5 in the repository root)
# Needs root for apt-get (CI and the dev machines run as root). On a cluster without root, load the site's
# parallel HDF5 + MPI modules instead and run the pip steps below by hand (see the comments).
# Idempotent: when the venv already imports an MPI-enabled h5py and mpi4py it only refreshes the editable gansim.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-phdf5}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP="$VENV/.phdf5-built"

check() {
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import h5py, mpi4py  # noqa: F401
assert h5py.get_config().mpi, "h5py without MPI"
EOF
}

if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && check; then
  echo "setup_phdf5: $VENV already has h5py with parallel HDF5; refreshing gansim only"
  "$VENV/bin/pip" install -q --no-deps -e .
  exit 0
fi

echo "setup_phdf5: installing system parallel HDF5 + Open MPI"
if ! dpkg -s libhdf5-openmpi-dev openmpi-bin >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup_phdf5: need root for apt-get (or load your site's parallel HDF5 module and set HDF5_DIR)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends libhdf5-openmpi-dev openmpi-bin libopenmpi-dev pkg-config \
    build-essential
fi
command -v mpicc >/dev/null || { echo "setup_phdf5: mpicc not found after install" >&2; exit 1; }

echo "setup_phdf5: creating $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/pip" install -q)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "$TORCH_SPEC" numpy tqdm PyYAML pytest pytest-timeout
# mpi4py from source so that it links the system Open MPI (the same libmpi parallel HDF5 uses).
MPICC=mpicc "${PIP[@]}" --no-binary=mpi4py mpi4py
# h5py's build needs these in the venv, because --no-build-isolation (without it pip rebuilds mpi4py in an
# isolated env and the compile can eat >20 GiB of memory).
"${PIP[@]}" -U "setuptools>=77" cython numpy pkgconfig
CC=mpicc HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-openmpi \
  "${PIP[@]}" --no-build-isolation --no-binary=h5py --force-reinstall --no-deps h5py
"${PIP[@]}" --no-deps -e .

check || { echo "setup_phdf5: h5py in $VENV has no MPI support after the build" >&2; exit 1; }
"$VENV/bin/python" -c "import h5py; print('setup_phdf5: h5py', h5py.__version__, 'HDF5', h5py.version.hdf5_version, 'mpi', h5py.get_config().mpi)"
touch "$STAMP"
