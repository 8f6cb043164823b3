#!/usr/bin/env bash
# Install and start a single-host Son of Grid Engine cluster (qmaster + execd) for
# the test suite.  Idempotent: a healthy cluster is left alone.
#
#   tests/schedulers/sge.sh         install (if needed), start, configure, verify
#   tests/schedulers/sge.sh stop    stop sge_execd and sge_qmaster (by PID)
#   tests/schedulers/sge.sh status  exit 0 if the cluster is up and healthy
#
# Writes $CLUSTERJOB_TEST_STATE/sge.env (default /var/tmp/clusterjob-test).
set -euo pipefail
CJ_NAME=sge
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PACKAGES=(gridengine-master gridengine-exec gridengine-client)
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
SGE_SPOOL=/var/spool/gridengine
SGE_BIN=/usr/bin
QMASTER_PID=$SGE_SPOOL/qmaster/qmaster.pid
EXECD_PID=$SGE_SPOOL/execd/$CJ_HOST/execd.pid
ACT_QMASTER=$SGE_ROOT/$SGE_CELL/common/act_qmaster
ENV_FILE=$CJ_STATE/sge.env
CONF_DIR=$CJ_STATE/sge
QUEUE=all.q
PE=smp
CPUS=$(nproc)

# ------------------------------------------------------------------ checks
# The state letters of $QUEUE@host (empty when fine); fails if it is not listed.
queue_states() {
    local line
    line=$(qstat -f -q "$QUEUE" 2>/dev/null | awk -v q="$QUEUE@$CJ_HOST" '$1 == q')
    [[ -n $line ]] || return 1
    awk '{print $6}' <<<"$line"
}

# The execd has reported (the queue instance is not in state u = unknown).
queue_reported() {
    local states
    states=$(queue_states) || return 1
    [[ $states != *u* ]]
}

# Usable: no state among unknown, Error, disabled, suspended, alarm, ambiguous config.
queue_ok() {
    local states
    states=$(queue_states) || return 1
    [[ ! $states =~ [uEdDsSCAac] ]]
}

healthy() {
    running "$QMASTER_PID" sge_qmaster || return 1
    running "$EXECD_PID" sge_execd || return 1
    env_current sge || return 1
    hosts_ok || return 1
    [[ $(cat "$ACT_QMASTER" 2>/dev/null) == "$CJ_HOST" ]] || return 1
    queue_ok
}

# ------------------------------------------------------------------ install
install_sge() {
    if ! pkg_installed gridengine-master || ! pkg_installed gridengine-exec ||
        ! pkg_installed gridengine-client; then
        # Preseed so that gridengine-master's postinst creates the cell.
        local p q
        for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
            for q in "shared/gridengineconfig boolean true" "shared/gridenginecell string $SGE_CELL" \
                "shared/gridenginemaster string $CJ_HOST"; do
                printf '%s %s\n' "$p" "$q"
            done
        done | debconf-set-selections
    fi
    ensure_packages "${PACKAGES[@]}"
    if [[ ! -e $SGE_SPOOL/spooldb/sge ]]; then
        # installed before preseeding, or the spool was removed: create the cell now
        log "initialising the SGE cell $SGE_ROOT/$SGE_CELL"
        install -d -o sgeadmin -g sgeadmin -m 0755 "$SGE_SPOOL/qmaster" \
            "$SGE_SPOOL/qmaster/job_scripts" "$SGE_SPOOL/spooldb" "$SGE_ROOT/$SGE_CELL/common"
        runuser -u sgeadmin -- /usr/share/gridengine/scripts/init_cluster \
            "$SGE_ROOT" "$SGE_CELL" "$SGE_SPOOL/spooldb" sgeadmin \
            >"$CJ_LOGS/sge-init-cluster.log" 2>&1 ||
            die_log "init_cluster failed" "$CJ_LOGS/sge-init-cluster.log"
    fi
    [[ -s $SGE_ROOT/$SGE_CELL/common/bootstrap ]] ||
        die "$SGE_ROOT/$SGE_CELL/common/bootstrap is missing: purge and reinstall gridengine-common"
}

# ------------------------------------------------------------------ daemons
start_qmaster() {
    install -d -o sgeadmin -g sgeadmin -m 0755 /run/gridengine
    if [[ $(cat "$ACT_QMASTER" 2>/dev/null) != "$CJ_HOST" ]]; then
        printf '%s\n' "$CJ_HOST" >"$ACT_QMASTER"
        chown sgeadmin:sgeadmin "$ACT_QMASTER"
        chmod 0644 "$ACT_QMASTER"
        # a running qmaster may still think it is someone else: restart it
        stop_pid sge_execd "$EXECD_PID" sge_execd
        stop_pid sge_qmaster "$QMASTER_PID" sge_qmaster
    fi
    if ! running "$QMASTER_PID" sge_qmaster; then
        port_open 6444 && die "port 6444 is in use by a qmaster this script did not start; stop it first"
        log "starting sge_qmaster"
        # daemonizes itself and writes $QMASTER_PID (the init script would do the same)
        detach_run "$CJ_LOGS/sge_qmaster.out" /usr/sbin/sge_qmaster ||
            die_log "sge_qmaster failed to start" "$CJ_LOGS/sge_qmaster.out" "$SGE_SPOOL/qmaster/messages"
    fi
    wait_until 60 "sge_qmaster" qconf -sh ||
        die_log "sge_qmaster does not answer" "$CJ_LOGS/sge_qmaster.out" "$SGE_SPOOL/qmaster/messages"
    wait_until 10 "qmaster pid file" running "$QMASTER_PID" sge_qmaster ||
        die_log "no sge_qmaster in $QMASTER_PID" "$SGE_SPOOL/qmaster/messages"
}

start_execd() {
    if running "$EXECD_PID" sge_execd; then
        return 0
    fi
    port_open 6445 && die "port 6445 is in use by an execd this script did not start; stop it first"
    log "starting sge_execd"
    detach_run "$CJ_LOGS/sge_execd.out" /usr/sbin/sge_execd ||
        die_log "sge_execd failed to start" "$CJ_LOGS/sge_execd.out" "$SGE_SPOOL/execd/$CJ_HOST/messages"
    wait_until 10 "execd pid file" running "$EXECD_PID" sge_execd ||
        die_log "no sge_execd in $EXECD_PID" "$CJ_LOGS/sge_execd.out" "$SGE_SPOOL/execd/$CJ_HOST/messages"
}

# ------------------------------------------------------------------ configuration
# qconf_apply KIND NAME FILE: add (-A) or modify (-M) a configuration object.
qconf_apply() {
    local kind=$1 name=$2 file=$3 show add mod out
    case $kind in
    exechost) show=(-se "$name") add=-Ae mod=-Me ;;
    hostgroup) show=(-shgrp "$name") add=-Ahgrp mod=-Mhgrp ;;
    pe) show=(-sp "$name") add=-Ap mod=-Mp ;;
    queue) show=(-sq "$name") add=-Aq mod=-Mq ;;
    esac
    if qconf "${show[@]}" >/dev/null 2>&1; then
        out=$(qconf "$mod" "$file" 2>&1) || die "qconf $mod $file: $out"
    else
        out=$(qconf "$add" "$file" 2>&1) || die "qconf $add $file: $out"
    fi
}

configure() {
    mkdir -p "$CONF_DIR"
    local out
    # Global config: root's jobs are refused until min_uid/min_gid are 0 (set before
    # sge_execd starts); accounting flushed at once (qacct sees a job ~1 s after it
    # ends instead of up to 15 s); no job shell is a login shell (the default list
    # makes bash jobs read root's ~/.profile: this machine's pyenv init, whose rehash
    # lock a qdel'ed job (SIGKILL) left behind, so that every later login shell, and
    # every ssh command, waited 60 s for it).  qconf -Mconf wants a file named "global".
    qconf -sconf global >"$CONF_DIR/global.orig" || die "qconf -sconf global failed"
    awk '
        skip { skip = /\\$/; next }
        /^min_uid / { print "min_uid                      0"; next }
        /^min_gid / { print "min_gid                      0"; next }
        /^login_shells / { print "login_shells                 none"; next }
        /^reporting_params / {
            print "reporting_params             accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00"
            skip = /\\$/; next
        }
        { print }' "$CONF_DIR/global.orig" >"$CONF_DIR/global"
    out=$(cd "$CONF_DIR" && qconf -Mconf global 2>&1) || die "qconf -Mconf global: $out"
    # this host may administer and submit
    if ! qconf -sh 2>/dev/null | grep -qx "$CJ_HOST"; then
        out=$(qconf -ah "$CJ_HOST" 2>&1) || die "qconf -ah $CJ_HOST: $out"
    fi
    if ! qconf -ss 2>/dev/null | grep -qx "$CJ_HOST"; then
        out=$(qconf -as "$CJ_HOST" 2>&1) || die "qconf -as $CJ_HOST: $out"
    fi

    cat >"$CONF_DIR/exechost" <<EOF
hostname              $CJ_HOST
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
    qconf_apply exechost "$CJ_HOST" "$CONF_DIR/exechost"

    cat >"$CONF_DIR/allhosts" <<EOF
group_name @allhosts
hostlist $CJ_HOST
EOF
    qconf_apply hostgroup @allhosts "$CONF_DIR/allhosts"

    cat >"$CONF_DIR/pe_$PE" <<EOF
pe_name            $PE
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
    qconf_apply pe "$PE" "$CONF_DIR/pe_$PE"

    # load_thresholds NONE: a busy 2-core machine must not put the queue in alarm
    cat >"$CONF_DIR/queue_$QUEUE" <<EOF
qname                 $QUEUE
hostlist              @allhosts
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               $PE
rerun                 FALSE
slots                 $CPUS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
    qconf_apply queue "$QUEUE" "$CONF_DIR/queue_$QUEUE"

    # schedule every second (default 15 s) and flush on submit/finish
    qconf -ssconf >"$CONF_DIR/sched" || die "qconf -ssconf failed"
    sed -i -E -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
        -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
        -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' "$CONF_DIR/sched"
    out=$(qconf -Msconf "$CONF_DIR/sched" 2>&1) || die "qconf -Msconf: $out"
}

# ------------------------------------------------------------------ smoke test
smoke_test() {
    # A unique name: job ids restart after a qmaster crash, and qacct -j ID would
    # then also find an older job with the same id.
    local t0 id out name=cj-sge-smoke-$$-$RANDOM
    t0=$(now_ms)
    out=$(cd /tmp && qsub -terse -b y -S /bin/bash -N "$name" -o /dev/null -e /dev/null true 2>&1) ||
        die_log "qsub failed: $out" "$SGE_SPOOL/qmaster/messages"
    id=$(tail -n 1 <<<"$out")
    [[ $id =~ ^[0-9]+$ ]] || die "qsub -terse printed '$out', not a job id"
    # shellcheck disable=SC2016 # expanded by the inner bash
    if ! wait_until 120 "qacct -j $id" bash -c 'qacct -j "$1" 2>/dev/null | grep -qE "^exit_status +0"' _ "$name"; then
        log "qstat -j $id: $(qstat -j "$id" 2>&1 | tail -n 20)"
        die_log "smoke job $id did not finish with exit_status 0" \
            "$SGE_SPOOL/qmaster/messages" "$SGE_SPOOL/execd/$CJ_HOST/messages"
    fi
    log "smoke job $id done (qacct exit_status 0) after $(ms_since "$t0")"
}

check_slurm() {
    # the /etc/hosts change must not upset SLURM (if it is installed and running)
    if command -v sinfo >/dev/null && [[ -s $CJ_STATE/slurm.env ]]; then
        sinfo -h -o %t >/dev/null 2>&1 || die "sinfo fails after the /etc/hosts change: $(sinfo 2>&1)"
    fi
}

up() {
    local t0
    t0=$(now_ms)
    if healthy; then
        log "SGE is already up ($(ms_since "$t0")): $ENV_FILE"
        return 0
    fi
    take_lock
    install_sge
    fix_hosts
    check_slurm
    start_qmaster
    configure
    start_execd
    # the execd reports within seconds; then clear what earlier tests may have left:
    # error state (a failed job), disabled or suspended queue
    wait_until 60 "sge_execd to report" queue_reported ||
        die_log "sge_execd does not report to the qmaster" \
            "$SGE_SPOOL/qmaster/messages" "$SGE_SPOOL/execd/$CJ_HOST/messages"
    if ! queue_ok; then
        log "queue $QUEUE is in state '$(queue_states)': clearing, enabling, unsuspending it"
        qmod -cq "$QUEUE" >/dev/null 2>&1 || true
        qmod -e "$QUEUE" >/dev/null 2>&1 || true
        qmod -usq "$QUEUE" >/dev/null 2>&1 || true
    fi
    wait_until 30 "queue $QUEUE@$CJ_HOST" queue_ok ||
        die_log "queue $QUEUE is not usable: $(qstat -f -q "$QUEUE" -explain aAcE 2>&1 | tail -n 5)" \
            "$SGE_SPOOL/qmaster/messages" "$SGE_SPOOL/execd/$CJ_HOST/messages"
    smoke_test
    write_env sge \
        "SGE_ROOT=$SGE_ROOT" \
        "SGE_CELL=$SGE_CELL" \
        "SGE_BIN=$SGE_BIN" \
        "SGE_QUEUE=$QUEUE" \
        "SGE_PE=$PE" \
        "SGE_CPUS=$CPUS"
    log "SGE is up ($(ms_since "$t0")): $ENV_FILE"
}

case ${1:-up} in
up | start) up ;;
stop)
    take_lock
    stop_pid sge_execd "$EXECD_PID" sge_execd
    stop_pid sge_qmaster "$QMASTER_PID" sge_qmaster
    rm -f "$ENV_FILE"
    ;;
status) healthy ;;
*) die "usage: $0 [up|stop|status]" ;;
esac
