#!/usr/bin/env bash
# Bring up the real schedulers the test suite needs (idempotent; fast when up).
#
#   tests/schedulers/up.sh                 slurm, torque, sge, sshd (in that order)
#   tests/schedulers/up.sh slurm sshd      only these
#   tests/schedulers/up.sh stop [NAME...]  stop them (reverse order), by PID
#
# Exits non-zero, with the tail of the failed scheduler's logs, if one does not
# come up.  State, env files and logs: ${CLUSTERJOB_TEST_STATE:-/var/tmp/clusterjob-test}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CJ_NAME=up
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

ALL=(slurm torque sge sshd)

# The logs worth reading when NAME fails.
logs_of() {
    case $1 in
    slurm | torque)
        printf '%s\n' "$CJ_LOGS/slurmctld.log" "$CJ_LOGS/slurmd.log" "$CJ_LOGS/slurmdbd.log" \
            "$CJ_LOGS/munged.out" "$CJ_LOGS/mariadb.out" "$CJ_LOGS/apt-install-$1.log"
        [[ $1 == torque ]] && printf '%s\n' "$CJ_LOGS/torque-download.log"
        ;;
    sge)
        printf '%s\n' /var/spool/gridengine/qmaster/messages \
            "/var/spool/gridengine/execd/$CJ_HOST/messages" "$CJ_LOGS/sge_qmaster.out" \
            "$CJ_LOGS/sge_execd.out" "$CJ_LOGS/apt-install-sge.log"
        ;;
    sshd) printf '%s\n' "$CJ_LOGS/sshd.out" "$CJ_LOGS/ssh-check.log" "$CJ_LOGS/apt-install-sshd.log" ;;
    esac
}

valid() {
    local n
    for n in "${ALL[@]}"; do [[ $1 == "$n" ]] && return 0; done
    return 1
}

action=up
if [[ ${1:-} == stop ]]; then
    action=stop
    shift
fi
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for n in "${names[@]}"; do
    valid "$n" || die "unknown scheduler '$n' (known: ${ALL[*]}; or: stop [NAME...])"
done
# always in the order of ALL (torque needs slurm; sge changes /etc/hosts after slurm)
ordered=()
for n in "${ALL[@]}"; do
    for m in "${names[@]}"; do
        if [[ $m == "$n" ]]; then
            ordered+=("$n")
            break
        fi
    done
done
names=("${ordered[@]}")

t0=$(now_ms)
export CJ_UP=1
if [[ $action == stop ]]; then
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do
        bash "$HERE/${names[i]}.sh" stop
    done
    log "stopped ${names[*]} ($(ms_since "$t0"))"
    exit 0
fi

for n in "${names[@]}"; do
    t1=$(now_ms)
    if ! bash "$HERE/$n.sh" up; then
        log "ERROR: $n did not come up ($(ms_since "$t1")); its logs follow"
        mapfile -t logs < <(logs_of "$n")
        show_log "${logs[@]}"
        log "FAILED: $n (total $(ms_since "$t0"))"
        exit 1
    fi
done
envs=()
for f in "$CJ_STATE"/*.env; do [[ -e $f ]] && envs+=("${f##*/}"); done
log "up: ${names[*]} in $(ms_since "$t0"); env files in $CJ_STATE: ${envs[*]}"
