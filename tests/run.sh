#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command (as root):
#
#   bash tests/run.sh [pytest arguments...]
#
# 1. installs and starts the real schedulers (SLURM with accounting, the
#    TORQUE-style commands, Grid Engine, a loopback sshd): tests/schedulers/up.sh
# 2. creates a virtualenv (.venv-test) and installs every distribution of the
#    repository into it, non-editable, so that the entry-point metadata is tested
# 3. runs pytest; fails on any failure, and also when no test ran (pytest exit 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCHEDULERS=${CLUSTERJOB_TEST_SCHEDULERS:-slurm torque sge sshd}
echo "== starting schedulers: $SCHEDULERS" >&2
# shellcheck disable=SC2086
bash tests/schedulers/up.sh $SCHEDULERS

VENV=${CLUSTERJOB_TEST_VENV:-$ROOT/.venv-test}
echo "== installing clusterjob into $VENV" >&2
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "pluggy>=1.0" pytest setuptools wheel
dists=()
for dist in clusterjob-core clusterjob-slurm clusterjob-pbs clusterjob-lsf clusterjob-sge; do
    [ -f "$dist/pyproject.toml" ] && dists+=("./$dist")
done
# --force-reinstall --no-deps: the venv always holds exactly this checkout's code.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps "${dists[@]}"

echo "== running pytest" >&2
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "tests/run.sh: pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
