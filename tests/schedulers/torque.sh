#!/usr/bin/env bash
# TORQUE-style qsub/qstat/qdel (the Perl wrappers of `slurm-wlm-torque`) over the
# SLURM test cluster, installed in a private prefix so that they coexist with
# gridengine-client (both packages own /usr/bin/qsub).
#
#   tests/schedulers/torque.sh         set up (starts SLURM via slurm.sh), verify
#   tests/schedulers/torque.sh stop    remove torque.env (no daemons of its own)
#   tests/schedulers/torque.sh status  exit 0 if set up and SLURM is healthy
#
# Writes $CLUSTERJOB_TEST_STATE/torque.env: TORQUE_BIN is the folder to put first
# on PATH for the PBS/TORQUE tests.
set -euo pipefail
CJ_NAME=torque
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$HERE/common.sh"

# slurm-wlm-torque's dependencies install normally; only the package itself
# (which Conflicts: gridengine-client) is unpacked privately.
PACKAGES=(perl libslurm-perl libslurmdb-perl libswitch-perl slurm-client)
PREFIX=$CJ_STATE/torque
BIN=$PREFIX/usr/bin
ENV_FILE=$CJ_STATE/torque.env
# qsub calls ${FindBin::Bin}/sbatch (and salloc, srun): the SLURM commands must sit
# beside the wrappers.
SLURM_COMMANDS=(sbatch salloc srun squeue scontrol scancel sacct sacctmgr sinfo sstat
    sattach sbcast sprio sshare)

slurm_version() { dpkg-query -W -f='${Version}' slurm-client 2>/dev/null; }

installed() {
    local c
    [[ -x $BIN/qsub && -x $BIN/qstat && -x $BIN/qdel ]] || return 1
    [[ $(cat "$PREFIX/VERSION" 2>/dev/null) == "$(slurm_version)" ]] || return 1
    for c in "${SLURM_COMMANDS[@]}"; do
        [[ -x $BIN/$c ]] || return 1
    done
}

healthy() {
    env_current torque && installed && bash "$HERE/slurm.sh" status
}

unpack() {
    local version debs deb
    version=$(slurm_version)
    [[ -n $version ]] || die "slurm-client is not installed"
    debs=$PREFIX/debs/$version
    mkdir -p "$debs"
    deb=$(find "$debs" -maxdepth 1 -name 'slurm-wlm-torque_*.deb' | head -n 1)
    if [[ -z $deb ]]; then
        apt_update_once
        log "apt-get download slurm-wlm-torque=$version"
        # APT::Sandbox::User=root: user _apt may not write into the state folder
        (cd "$debs" && apt-get -o APT::Sandbox::User=root download "slurm-wlm-torque=$version") \
            >"$CJ_LOGS/torque-download.log" 2>&1 ||
            die_log "apt-get download slurm-wlm-torque=$version failed" "$CJ_LOGS/torque-download.log"
        deb=$(find "$debs" -maxdepth 1 -name 'slurm-wlm-torque_*.deb' | head -n 1)
        [[ -n $deb ]] || die_log "apt-get download left no .deb in $debs" "$CJ_LOGS/torque-download.log"
    fi
    log "unpacking $(basename "$deb") into $PREFIX"
    rm -rf "${PREFIX:?}/usr"
    dpkg-deb -x "$deb" "$PREFIX"
    local c
    for c in "${SLURM_COMMANDS[@]}"; do
        if [[ -x /usr/bin/$c ]]; then
            ln -sfn "/usr/bin/$c" "$BIN/$c"
        else
            die "/usr/bin/$c is missing (slurm-client not installed?)"
        fi
    done
    printf '%s\n' "$version" >"$PREFIX/VERSION"
}

job_state() { PATH=$BIN:$PATH qstat -f "$1" 2>/dev/null | sed -n 's/^[[:space:]]*job_state = \([A-Z]\).*/\1/p'; }

verify() {
    local t0 dir=$PREFIX/smoke id out state
    t0=$(now_ms)
    mkdir -p "$dir"
    cat >"$dir/job.sh" <<'EOF'
#!/bin/bash
#PBS -N cj-torque-smoke
#PBS -l walltime=00:05:00
sleep 300
EOF
    out=$(cd "$dir" && PATH=$BIN:$PATH qsub -o "$dir/job.out" -e "$dir/job.err" "$dir/job.sh" 2>&1) ||
        die "qsub failed: $out"
    id=$(tail -n 1 <<<"$out" | tr -d '[:space:]')
    [[ $id =~ ^[0-9]+$ ]] || die "qsub did not print a numeric job id: '$out'"
    trap 'scancel "$id" 2>/dev/null || true' EXIT
    state=$(job_state "$id")
    [[ $state =~ ^[QRC]$ ]] || die "qstat -f $id shows no job_state: $(PATH=$BIN:$PATH qstat -f "$id" 2>&1 | head -n 20)"
    PATH=$BIN:$PATH qdel "$id" || die "qdel $id failed"
    # shellcheck disable=SC2016 # expanded by the inner bash
    wait_until 60 "qstat -f $id to show job_state = C after qdel" \
        bash -c '[[ $(PATH=$1:$PATH qstat -f "$2" 2>/dev/null | sed -n "s/^[[:space:]]*job_state = //p") == C ]]' _ "$BIN" "$id" ||
        die "job $id is not finished after qdel: $(squeue -h -j "$id" -o '%i %T' 2>&1)"
    trap - EXIT
    log "qsub/qstat/qdel work (job $id was $state, then C after qdel; $(ms_since "$t0"))"
}

up() {
    local t0
    t0=$(now_ms)
    if healthy; then
        log "TORQUE wrappers are already set up ($(ms_since "$t0")): $ENV_FILE"
        return 0
    fi
    bash "$HERE/slurm.sh"
    take_lock
    ensure_packages "${PACKAGES[@]}"
    installed || unpack
    verify
    write_env torque "TORQUE_BIN=$BIN"
    log "TORQUE wrappers are ready ($(ms_since "$t0")): $ENV_FILE"
}

case ${1:-up} in
up | start) up ;;
stop) rm -f "$ENV_FILE" ;;
status) healthy ;;
*) die "usage: $0 [up|stop|status]" ;;
esac
