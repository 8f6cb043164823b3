#!/usr/bin/env bash
# The scheduler-free part of the suite on every Python that the distributions declare
# (their "Programming Language :: Python :: 3.X" classifiers), one venv each:
#
#   bash tests/pythons.sh [--except X.Y] [pytest arguments...]
#
# An interpreter is looked for as pythonX.Y on PATH, then in pyenv's versions folder.
# A declared version that this machine does not have is reported as skipped and does
# not fail the run; a version that is found must pass. --except X.Y leaves out the
# version that tests/run.sh already ran the whole suite on.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/venv.sh
source tests/venv.sh

already=""
if [ "${1:-}" = "--except" ]; then
    already=$2
    shift 2
fi

SCHEDULER_FREE="not slurm and not sge and not torque and not ssh"

declared_versions() {
    grep -ho 'Programming Language :: Python :: 3\.[0-9]*"' clusterjob-*/pyproject.toml |
        grep -o '3\.[0-9]*' | sort -u -t. -k2,2n
}

# The path of an interpreter of version $1 (X.Y) that runs, or nothing.
find_python() {
    local version=$1 candidate
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for candidate in "$(command -v "python$version" 2>/dev/null || true)" \
        $(ls -d "$pyenv_root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -V -r); do
        [ -n "$candidate" ] || continue
        # A pyenv shim exists for every installed version but runs only the selected ones.
        if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
            echo "$candidate"
            return
        fi
    done
}

failed=()
passed=()
skipped=()
for version in $(declared_versions); do
    if [ "$version" = "$already" ]; then
        continue
    fi
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version: skipped (no python$version on PATH or in pyenv on this machine)" >&2
        skipped+=("$version")
        continue
    fi
    venv="$ROOT/.venv-test-$version"
    echo "== Python $version ($python): scheduler-free tests in $venv" >&2
    status=0
    fill_test_venv "$venv" "$python" || status=$?
    if [ "$status" -eq 0 ]; then
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "$SCHEDULER_FREE" "$@" || status=$?
    fi
    if [ "$status" -eq 0 ]; then
        passed+=("$version")
    else
        [ "$status" -eq 5 ] && echo "== Python $version: pytest collected no tests: that is a failure" >&2
        failed+=("$version")
    fi
done

echo "== other Pythons: passed: ${passed[*]:-none}; failed: ${failed[*]:-none}; skipped (not on this machine): ${skipped[*]:-none}" >&2
[ "${#failed[@]}" -eq 0 ]
