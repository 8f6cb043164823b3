#!/usr/bin/env bash
# Install the shells that the exit-marker lines are run under (tests/core/test_markers.py):
# every POSIX shell that clusterjob.markers gives markers to must be there, so that
# tests/run.sh (which runs this and then sets CLUSTERJOB_TEST_ALL_SHELLS=1) tests each
# one; a shell that is missing there is a test failure, not a test that silently vanished.
#
#   tests/schedulers/shells.sh    install the missing ones (nothing at all when all are there)
#
# Not a scheduler: no daemon, no env file; tests/run.sh calls it whatever
# CLUSTERJOB_TEST_SCHEDULERS says, since the marker tests need no scheduler.
set -euo pipefail
CJ_NAME=shells
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# dash: /bin/sh and /bin/dash; ksh: /bin/ksh (ksh93); mksh: /bin/mksh; busybox: its ash.
PACKAGES=(bash dash zsh ksh mksh busybox)

take_lock
ensure_packages "${PACKAGES[@]}"
log "shells for the marker tests are installed: ${PACKAGES[*]}"
