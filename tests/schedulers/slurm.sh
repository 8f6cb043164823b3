#!/usr/bin/env bash
# Install and start a single-node SLURM cluster with full accounting (slurmdbd +
# MariaDB) for the test suite.  Idempotent: a healthy cluster is left alone.
#
#   tests/schedulers/slurm.sh         install (if needed), start, verify
#   tests/schedulers/slurm.sh stop    stop the daemons this script started (by PID)
#   tests/schedulers/slurm.sh status  exit 0 if the cluster is up and healthy
#
# Writes $CLUSTERJOB_TEST_STATE/slurm.env (default /var/tmp/clusterjob-test).
set -euo pipefail
CJ_NAME=slurm
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge slurmdbd mariadb-server mariadb-client)
CLUSTER=clusterjob
PARTITION=debug
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=clusterjob-test-only
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
ENV_FILE=$CJ_STATE/slurm.env
# daemon name -> command name in /proc/PID/comm
declare -A COMM=([munged]=munged [mariadb]=mariadbd [slurmdbd]=slurmdbd
    [slurmctld]=slurmctld [slurmd]=slurmd)
DAEMONS=(munged mariadb slurmdbd slurmctld slurmd)

is_running() { running "$CJ_RUN/$1.pid" "${COMM[$1]}"; }

node_state() { sinfo -h -o %t 2>/dev/null | head -n 1; }
node_usable() { [[ $(node_state) =~ ^(idle|mix|alloc|comp)$ ]]; }

healthy() {
    local d
    for d in "${DAEMONS[@]}"; do is_running "$d" || return 1; done
    env_current slurm || return 1
    node_usable || return 1
    # accounting answers (a cheap query: no jobs in the last second)
    sacct -n -X -S now -o JobID >/dev/null 2>&1 || return 1
}

stop_all() {
    local i d
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        d=${DAEMONS[i]}
        stop_pid "$d" "$CJ_RUN/$d.pid" "${COMM[$d]}"
    done
}

# ------------------------------------------------------------------ munge
start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    if is_running munged; then
        return 0
    fi
    log "starting munged"
    start_bg munged munge -- /usr/sbin/munged --foreground --force
    wait_until 15 "munged" munge -n ||
        die_log "munged did not start" "$CJ_LOGS/munged.out" /var/log/munge/munged.log
}

# ------------------------------------------------------------------ MariaDB
start_mariadb() {
    install -d -o mysql -g root -m 0755 /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "initialising the MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
            >"$CJ_LOGS/mariadb-install-db.log" 2>&1 ||
            die_log "mariadb-install-db failed" "$CJ_LOGS/mariadb-install-db.log"
    fi
    if ! is_running mariadb; then
        log "starting mariadbd"
        start_bg mariadb root -- /usr/sbin/mariadbd --user=mysql \
            --skip-networking=0 --bind-address=127.0.0.1
        wait_until 60 "MariaDB" mariadb-admin --protocol=socket ping ||
            die_log "MariaDB did not start" "$CJ_LOGS/mariadb.out"
    fi
    mariadb --protocol=socket <<SQL || die_log "creating the accounting database failed" "$CJ_LOGS/mariadb.out"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# ------------------------------------------------------------------ slurmdbd
start_slurmdbd() {
    install -d -o slurm -g slurm -m 0755 /var/log/slurm /var/spool/slurmctld /run/slurm
    touch "$CJ_LOGS/slurmdbd.log"
    chown slurm:slurm "$CJ_LOGS/slurmdbd.log"
    local changed=0
    write_if_changed "$DBD_CONF" 0600 <<EOF && changed=1
# written by tests/schedulers/slurm.sh -- test cluster only
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$CJ_LOGS/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
# listen on the host name's address (127.0.0.1) only, not on every interface
CommunicationParameters=NoInAddrAny
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    chown slurm:slurm "$DBD_CONF"
    chmod 0600 "$DBD_CONF"
    if ((changed)) && is_running slurmdbd; then
        log "slurmdbd.conf changed: restarting slurmdbd"
        stop_pid slurmdbd "$CJ_RUN/slurmdbd.pid" slurmdbd
    fi
    if ! is_running slurmdbd; then
        log "starting slurmdbd"
        start_bg slurmdbd root -- /usr/sbin/slurmdbd -D
        wait_until 60 "slurmdbd" sacctmgr -n show cluster ||
            die_log "slurmdbd did not start" "$CJ_LOGS/slurmdbd.log" "$CJ_LOGS/slurmdbd.out"
    fi
    if [[ -z $(sacctmgr -n -P show cluster "$CLUSTER" format=Cluster 2>/dev/null) ]]; then
        log "sacctmgr: adding cluster $CLUSTER"
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if [[ -z $(sacctmgr -n -P show account clusterjob format=Account 2>/dev/null) ]]; then
        sacctmgr -i add account clusterjob Cluster="$CLUSTER" \
            Description="clusterjob tests" Organization=clusterjob >/dev/null
    fi
    if [[ -z $(sacctmgr -n -P show assoc where cluster="$CLUSTER" user=root account=clusterjob \
        format=User 2>/dev/null) ]]; then
        sacctmgr -i add user root Account=clusterjob Cluster="$CLUSTER" >/dev/null
    fi
}

# ------------------------------------------------------------------ slurm.conf
write_slurm_conf() {
    local node cpus mem
    # The real topology, as slurmd detects it; RealMemory a bit below the machine's.
    node=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$((mem * 9 / 10))
    node=$(sed -e "s/^NodeName=[^ ]*/NodeName=$CJ_HOST/" -e "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$node")
    SLURM_CPUS=$cpus
    SLURM_MEM_MB=$mem
    write_if_changed "$CONF" 0644 <<EOF
# written by tests/schedulers/slurm.sh -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$CJ_HOST
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$CJ_LOGS/slurmctld.log
SlurmdLogFile=$CJ_LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
MailProg=/bin/true
# daemons listen on the host name's address (127.0.0.1) only, not on every interface
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
# scheduling
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
# timers: finished jobs stay in squeue for MinJobAge seconds
MinJobAge=60
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=120
SlurmdTimeout=300
# accounting
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# the node and its partition
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=$CJ_HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

# ------------------------------------------------------------------ slurmctld/slurmd
# Refuse to touch anything while daemons that this script did not start (other
# pidfiles, another state folder) hold the ports: they would keep running with
# the old configuration.
check_foreign() {
    local d port
    for d in mariadb slurmdbd slurmctld slurmd; do
        case $d in
        mariadb) port=3306 ;;
        slurmdbd) port=6819 ;;
        slurmctld) port=6817 ;;
        slurmd) port=6818 ;;
        esac
        if ! is_running "$d" && port_open "$port"; then
            die "port $port is in use, but not by a $d that this script started" \
                "(no live PID in $CJ_RUN/$d.pid): stop that $d first"
        fi
    done
}

# slurm.conf comes first: the client commands (sacctmgr too) need it.
prepare_slurm() {
    install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /run/slurm
    install -d -o root -g root -m 0755 /var/spool/slurmd
    touch "$CJ_LOGS/slurmctld.log" "$CJ_LOGS/slurmd.log"
    chown slurm:slurm "$CJ_LOGS/slurmctld.log"
    if write_slurm_conf; then
        log "wrote $CONF"
        stop_pid slurmd "$CJ_RUN/slurmd.pid" slurmd
        stop_pid slurmctld "$CJ_RUN/slurmctld.pid" slurmctld
    fi
}

start_slurm() {
    if ! is_running slurmctld; then
        log "starting slurmctld"
        start_bg slurmctld root -- /usr/sbin/slurmctld -D
        wait_until 60 "slurmctld" scontrol ping ||
            die_log "slurmctld did not start" "$CJ_LOGS/slurmctld.log" "$CJ_LOGS/slurmctld.out"
    fi
    if ! is_running slurmd; then
        log "starting slurmd"
        start_bg slurmd root -- /usr/sbin/slurmd -D
    fi
    # idle on a fresh cluster; mix/alloc when tests already run jobs
    if ! wait_until 60 "node $CJ_HOST to become idle" node_usable; then
        case $(node_state) in
        drain* | down* | fail*)
            log "node is $(node_state): resuming it"
            scontrol update NodeName="$CJ_HOST" State=RESUME || true
            ;;
        esac
        wait_until 30 "node $CJ_HOST to become idle" node_usable ||
            die_log "node $CJ_HOST is $(node_state) ($(scontrol show node "$CJ_HOST" | grep -o 'Reason=.*'))" \
                "$CJ_LOGS/slurmd.log" "$CJ_LOGS/slurmctld.log"
    fi
    log "node $CJ_HOST is $(node_state)"
}

# ------------------------------------------------------------------ smoke test
smoke_test() {
    local t0 id line comment=cj-smoke-$$
    t0=$(now_ms)
    id=$(sbatch --parsable --job-name=cj-smoke --comment="$comment" \
        --output=/dev/null --chdir=/tmp --wrap 'true') ||
        die_log "sbatch failed" "$CJ_LOGS/slurmctld.log"
    id=${id%%;*}
    # shellcheck disable=SC2016 # expanded by the inner bash
    if ! wait_until 120 "sacct to show job $id COMPLETED" \
        bash -c '[[ $(sacct -X -n -P -j "$1" --format=JobID,State,ExitCode) == "$1|COMPLETED|0:0" ]]' _ "$id"; then
        log "sacct says: $(sacct -X -n -P -j "$id" --format=JobID,State,ExitCode 2>&1)"
        die_log "smoke job $id did not complete" "$CJ_LOGS/slurmctld.log" "$CJ_LOGS/slurmd.log" "$CJ_LOGS/slurmdbd.log"
    fi
    line=$(sacct -X -n -P -j "$id" --format=JobID,Comment)
    [[ $line == "$id|$comment" ]] ||
        die "sacct does not show the job comment (got '$line', want '$id|$comment'): check AccountingStoreFlags"
    log "smoke job $id COMPLETED in sacct (with its --comment) after $(ms_since "$t0")"
}

up() {
    local t0
    t0=$(now_ms)
    if healthy; then
        log "SLURM is already up ($(ms_since "$t0")): $ENV_FILE"
        return 0
    fi
    take_lock
    if healthy; then
        log "SLURM is already up (started by a concurrent run)"
        return 0
    fi
    ensure_packages "${PACKAGES[@]}"
    # the host name must resolve (sge.sh makes the same change if it has to)
    getent hosts "$CJ_HOST" >/dev/null || fix_hosts
    check_foreign
    prepare_slurm
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurm
    smoke_test
    write_env slurm \
        "SLURM_PARTITION=$PARTITION" \
        "SLURM_CPUS=$SLURM_CPUS" \
        "SLURM_MEM_MB=$SLURM_MEM_MB" \
        "SLURM_CLUSTER=$CLUSTER" \
        "SLURM_NODE=$CJ_HOST" \
        "SLURM_CONF=$CONF"
    log "SLURM is up ($(ms_since "$t0")): $ENV_FILE"
}

case ${1:-up} in
up | start) up ;;
stop)
    take_lock
    stop_all
    rm -f "$ENV_FILE"
    ;;
status) healthy ;;
*) die "usage: $0 [up|stop|status]" ;;
esac
