# Sourced by slurm/train.sh and slurm/tune.sh (after `cd $SLURM_SUBMIT_DIR`): loads the site environment,
# activates gansim's venv and checks that ray and gansim are there.
#   source cluster/slurm_env.sh NAME      (NAME: the calling script, for messages)
# Variables: GANSIM_ENV_SCRIPT (sourced first, e.g. `module load` lines), GANSIM_VENV (default ./.venv).
# shellcheck shell=bash
_gansim_caller=${1:-gansim}
if [ -n "${GANSIM_ENV_SCRIPT:-}" ]; then
  # shellcheck disable=SC1090
  source "$GANSIM_ENV_SCRIPT"
fi
VENV=${GANSIM_VENV:-$PWD/.venv}
if [ -f "$VENV/bin/activate" ]; then
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
fi
command -v ray >/dev/null || { echo "$_gansim_caller: 'ray' not found (set GANSIM_VENV)" >&2; exit 2; }
command -v gansim >/dev/null || { echo "$_gansim_caller: 'gansim' not found (set GANSIM_VENV)" >&2; exit 2; }
