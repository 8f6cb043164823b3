# Sourced by tests/run.sh and tests/pythons.sh: build a test virtualenv from nothing.
#
#   fill_test_venv DIR PYTHON [extra pip requirements...]
#
# creates DIR with PYTHON (again, if DIR holds a venv of another Python), installs
# the test tools and every distribution of this checkout, non-editable, so that the
# entry-point metadata is what gets tested, then the example site plugin. Nothing
# is taken from PYTHON's own site-packages: a fresh machine's interpreter may hold
# only pip (3.12 and newer do not even bring setuptools).

# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

#: The tools every test venv gets; setuptools and wheel build our distributions
#: without build isolation (no network round trip per distribution).
TEST_TOOLS=("pluggy>=1.0" "pytest>=7" "setuptools>=64" "wheel")

fill_test_venv() {
    local venv=$1 python=$2
    shift 2
    local want have
    want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    if [ "$have" != "$want" ]; then
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${TEST_TOOLS[@]}" "$@"
    local dists=() dist
    for dist in clusterjob-core clusterjob-slurm clusterjob-pbs clusterjob-lsf clusterjob-sge; do
        [ -f "$ROOT/$dist/pyproject.toml" ] && dists+=("$ROOT/$dist")
    done
    # Core with its optional extra, so that the progress tests meet tqdm (they also
    # run the waits without it, in a subprocess that blocks its import).
    dists[0]="${dists[0]}[progress]"
    # --force-reinstall: the venv always holds exactly this checkout's code. The
    # dependencies (pluggy, importlib-metadata where the Python needs it, tqdm) are
    # resolved by pip from the distributions' own metadata, so a missing one fails here.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
        --force-reinstall "${dists[@]}"
    # The example site plugin (examples/clusterjob-mysite), as a site installs it: beside
    # core and slurm. --no-deps, or --force-reinstall would fetch those two from an index;
    # that it declares both is tested (tests/examples/test_example_mysite.py).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
        --force-reinstall --no-deps "$ROOT/examples/clusterjob-mysite"
}
