#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command (as root):
#
#   bash tests/run.sh [pytest arguments...]
#
# 1. installs and starts the real schedulers (SLURM with accounting, the
#    TORQUE-style commands, Grid Engine, a loopback sshd): tests/schedulers/up.sh;
#    and every shell the exit markers are tested under: tests/schedulers/shells.sh
# 2. creates a virtualenv (.venv-test) with $CLUSTERJOB_TEST_PYTHON (default python3)
#    and installs the test tools and every distribution of the repository into it,
#    non-editable, so that the entry-point metadata is tested (tests/venv.sh)
# 3. ruff (lint and format) and mypy over the repository; the documentation site
#    (mkdocs.yml) is built with warnings as errors, into a temporary folder
# 4. runs pytest; fails on any failure, and also when no test ran (pytest exit 5)
# 5. without pytest arguments: the scheduler-free tests on every other declared
#    Python found on the machine (tests/pythons.sh; missing ones are skipped).
# Every step runs; the exit status is non-zero if any of them failed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/venv.sh
source tests/venv.sh

SCHEDULERS=${CLUSTERJOB_TEST_SCHEDULERS:-slurm torque sge sshd}
echo "== starting schedulers: $SCHEDULERS" >&2
# shellcheck disable=SC2086
bash tests/schedulers/up.sh $SCHEDULERS
# Every shell the exit markers are given to, whatever schedulers were chosen: from here on
# a missing one fails its tests in tests/core/test_markers.py instead of being skipped.
bash tests/schedulers/shells.sh
export CLUSTERJOB_TEST_ALL_SHELLS=1

PYTHON=${CLUSTERJOB_TEST_PYTHON:-python3}
VENV=${CLUSTERJOB_TEST_VENV:-$ROOT/.venv-test}
echo "== installing clusterjob into $VENV ($PYTHON)" >&2
# Pinned: a new release of either may add checks, and the suite must not change by itself.
# The documentation tools are pinned in docs/requirements.txt, for the same reason.
fill_test_venv "$VENV" "$PYTHON" "ruff==0.17.6" "mypy==2.4.1" -r docs/requirements.txt

failed=()
echo "== ruff" >&2
"$VENV/bin/ruff" check --no-cache . || failed+=("ruff check")
"$VENV/bin/ruff" format --check --no-cache . || failed+=("ruff format")
echo "== mypy" >&2
"$VENV/bin/mypy" --cache-dir=/dev/null clusterjob-*/src examples/clusterjob-mysite/src || failed+=(mypy)
echo "== docs site (mkdocs build --strict)" >&2
docs_site=$(mktemp -d)
# NO_MKDOCS_2_WARNING: the theme's banner about a future MkDocs says nothing about this site.
NO_MKDOCS_2_WARNING=true "$VENV/bin/mkdocs" build --strict --config-file mkdocs.yml \
    --site-dir "$docs_site" || failed+=("docs site")
rm -rf "$docs_site"

echo "== running pytest" >&2
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "tests/run.sh: pytest collected no tests: that is a failure" >&2
    failed+=("pytest (no tests ran)")
elif [ "$status" -ne 0 ]; then
    failed+=(pytest)
fi

if [ "$#" -eq 0 ]; then
    main_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    bash tests/pythons.sh --except "$main_version" || failed+=("other Pythons")
else
    echo "== other Pythons: not run (pytest arguments were given; run bash tests/pythons.sh)" >&2
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "tests/run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "tests/run.sh: all steps passed" >&2
