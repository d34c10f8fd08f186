#!/usr/bin/env bash
# make test-habitat-sim: build the habitat-sim 0.2.2 chroot if missing, install the project's
# simulator-side dependencies and the project (editable, no deps) into its venv, then run
# tests_habitat_sim/ inside it, one pytest process per file (a habitat-sim Simulator must outlive
# the process on llvmpipe, see harness.make_sims). Fails loudly, never skips.
#   bash tests_habitat_sim/run.sh HSIM_ROOT HSIM_SHARED [pytest args]
set -euo pipefail
ROOT=${1:?HSIM_ROOT}; SHARED=${2:?HSIM_SHARED}; shift 2
if [[ $(id -u) != 0 ]]; then
  echo "make test-habitat-sim: needs root (it builds and enters a chroot with bind mounts at $ROOT); run it as root" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
[[ -f $SHARED/setup.sh && -f $SHARED/run.sh ]] || { echo "make test-habitat-sim: no habitat-sim chroot kit at $SHARED (expected setup.sh and run.sh; set HSIM_SHARED)" >&2; exit 2; }
if [[ ! -f $ROOT/.fih-hsim-ready ]]; then
  echo "=== $(date +%T) building the habitat-sim chroot at $ROOT (~12.5 min, once per machine)"
  bash "$SHARED/setup.sh" "$ROOT"
fi
inside() { bash "$SHARED/run.sh" "$ROOT" "$PWD" "$@"; }
echo "=== $(date +%T) simulator-side dependencies + habitat_fih (editable) in the chroot venv"
inside pip install --quiet --disable-pip-version-check -r tests_habitat_sim/requirements.txt
inside pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e /proj
rm -f outputs/parity/figures.json
status=0
for t in tests_habitat_sim/test_*.py; do
  echo "=== $(date +%T) $t"
  inside python -m pytest -q -p no:cacheprovider "$@" "$t" || status=1
done
if [[ -f outputs/parity/figures.json ]]; then
  echo "=== parity figures, FIHSim-v0 vs habitat-sim 0.2.2 (outputs/parity/figures.json)"
  python3 tests_habitat_sim/figures.py outputs/parity/figures.json
fi
[[ $status == 0 ]] && echo "=== $(date +%T) tests_habitat_sim: all passed" || echo "=== $(date +%T) tests_habitat_sim: FAILED (see above)" >&2
exit $status
