# shellcheck shell=bash
# Shared helpers for the scheduler set-up scripts in this folder.
# Source it; it expects `set -euo pipefail` in the caller.
#
# Everything a script starts is recorded by PID in $CJ_RUN/<name>.pid and logs to
# $CJ_LOGS/<name>.log, so that `<script> stop` can end exactly what it started.

CJ_STATE=${CLUSTERJOB_TEST_STATE:-/var/tmp/clusterjob-test}
CJ_LOGS=$CJ_STATE/logs
CJ_RUN=$CJ_STATE/run
CJ_NAME=${CJ_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}
CJ_SCRIPT=$(readlink -f "${BASH_SOURCE[1]:-$0}")
CJ_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck disable=SC2034 # used by the scripts that source this file
CJ_HOST=$(hostname -s)
export CJ_STATE CJ_LOGS CJ_RUN
mkdir -p "$CJ_STATE" "$CJ_LOGS" "$CJ_RUN"
chmod 755 "$CJ_STATE" "$CJ_LOGS" "$CJ_RUN"

log() { printf '%s [%s] %s\n' "$(date '+%H:%M:%S')" "$CJ_NAME" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Print the last lines of log files to stderr (for failure reports).
show_log() {
    local f
    for f in "$@"; do
        [[ -e $f ]] || continue
        printf '%s\n' "----- last 50 lines of $f -----" >&2
        tail -n 50 "$f" >&2 || true
        printf '%s\n' "----- end of $f -----" >&2
    done
}

# Fail with the given message and the tail of the given logs (up.sh, which sets
# CJ_UP=1, prints the logs of a failed script itself).
die_log() {
    local msg=$1
    shift
    log "ERROR: $msg"
    if [[ ${CJ_UP:-} == 1 ]]; then
        log "logs: $*"
    else
        show_log "$@"
    fi
    exit 1
}

# Serialise runs of the same script (fd 9; daemons we start get it closed).
take_lock() {
    exec 9>"$CJ_RUN/$CJ_NAME.lock"
    if ! flock -n 9; then
        log "waiting for another run of $CJ_NAME.sh to finish (lock $CJ_RUN/$CJ_NAME.lock)"
        flock -w 900 9 || die "could not take $CJ_RUN/$CJ_NAME.lock within 900 s"
    fi
}

# ---------------------------------------------------------------- packages

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# apt_update_once [force]: `apt-get update` at most once an hour (a stamp in the
# state folder), or now with "force". A failed update (say, one unreachable
# third-party source) is only a warning: the install that follows decides.
apt_update_once() {
    local stamp=$CJ_STATE/apt-updated
    if [[ ${1:-} != force ]] && [[ -n $(find "$stamp" -mmin -60 2>/dev/null) ]]; then
        return 0
    fi
    log "apt-get update"
    if apt-get -o DPkg::Lock::Timeout=600 update >"$CJ_LOGS/apt-update.log" 2>&1; then
        touch "$stamp"
    else
        log "WARNING: apt-get update failed (see $CJ_LOGS/apt-update.log); trying the install anyway"
    fi
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends "$@" </dev/null >>"$CJ_LOGS/apt-install-$CJ_NAME.log" 2>&1
}

# Install the packages that are not installed yet; nothing at all when all are.
ensure_packages() {
    local p missing=()
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    apt_update_once
    log "apt-get install ${missing[*]}"
    local t0=$SECONDS
    : >"$CJ_LOGS/apt-install-$CJ_NAME.log"
    if ! apt_install "${missing[@]}"; then
        # package lists from an earlier run may be stale (404): refresh and retry once
        apt_update_once force
        apt_install "${missing[@]}" ||
            die_log "apt-get install ${missing[*]} failed" "$CJ_LOGS/apt-install-$CJ_NAME.log"
    fi
    log "installed ${missing[*]} in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- waiting

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD [ARGS...]: poll CMD (quietly) until it
# succeeds; return 1 after the timeout.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local end=$((SECONDS + timeout))
    while ! "$@" >/dev/null 2>&1; do
        if ((SECONDS >= end)); then
            log "timed out after ${timeout} s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------- processes
# PID 1 here does not reap zombies, so `kill -0` is true for a dead daemon that was
# re-parented to PID 1: look at /proc/PID/stat instead.

pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != [ZX] ]]
}

# pid_is PID COMM: PID is alive and its command name is COMM (guards against reuse).
pid_is() {
    pid_alive "$1" || return 1
    [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}

pidfile_pid() {
    local pid=""
    [[ -r $1 ]] && read -r pid _ <"$1" 2>/dev/null
    printf '%s' "$pid"
}

# running PIDFILE COMM: the process named in PIDFILE is alive and is COMM.
running() {
    local pid
    pid=$(pidfile_pid "$1")
    [[ -n $pid ]] && pid_is "$pid" "$2"
}

# start_bg NAME USER -- CMD [ARGS...]: run a foreground daemon in the background with
# start-stop-daemon, pidfile $CJ_RUN/NAME.pid, stdout/stderr to $CJ_LOGS/NAME.out.
start_bg() {
    local name=$1 user=$2
    shift 3
    local pidfile=$CJ_RUN/$name.pid
    local chuid=()
    [[ $user != root ]] && chuid=(--chuid "$user")
    rm -f "$pidfile"
    # shellcheck disable=SC2094 # start-stop-daemon's own messages go to the same file
    start-stop-daemon --start --background --make-pidfile --pidfile "$pidfile" \
        --output "$CJ_LOGS/$name.out" "${chuid[@]}" --exec "$1" -- "${@:2}" \
        </dev/null >>"$CJ_LOGS/$name.out" 2>&1 9>&-
}

# detach_run OUT CMD [ARGS...]: run a self-daemonizing CMD with stdin /dev/null,
# stdout/stderr appended to OUT and all other inherited descriptors closed (an
# inherited pipe would keep a caller's `| cat` open for as long as the daemon runs).
detach_run() {
    local out=$1
    shift
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) </dev/null >>"$out" 2>&1
}

# stop_pid NAME PIDFILE COMM: stop the process in PIDFILE if it is still COMM.
stop_pid() {
    local name=$1 pidfile=$2 comm=$3 pid
    pid=$(pidfile_pid "$pidfile")
    if [[ -z $pid ]]; then
        return 0
    fi
    if ! pid_is "$pid" "$comm"; then
        log "$name: PID $pid from $pidfile is not running"
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $name (PID $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + 20))
    while pid_alive "$pid"; do
        if ((SECONDS >= end)); then
            log "$name (PID $pid) ignored SIGTERM for 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- /etc/hosts
# SGE insists that the address a client connects from resolves back to the
# client's host name, and SLURM needs the host name to resolve: on loopback that
# means "127.0.0.1 HOST ..." as the first 127.0.0.1 line.

hosts_ok() {
    [[ $(getent hosts 127.0.0.1 | awk '{print $2; exit}') == "$CJ_HOST" ]] &&
        [[ $(getent hosts "$CJ_HOST" | awk '{print $1; exit}') == 127.0.0.1 ]]
}

# Make the host name the first name of the first 127.0.0.1 line and remove it from
# every other line. Rewritten in place: /etc/hosts may be a bind mount.
fix_hosts() {
    hosts_ok && return 0
    log "/etc/hosts: making $CJ_HOST the first name of 127.0.0.1"
    cp -p /etc/hosts "$CJ_STATE/hosts.orig.$(date +%s)"
    local new
    new=$(awk -v h="$CJ_HOST" '
        /^[[:space:]]*#/ || NF < 2 { print; next }
        {
            names = ""
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^#/) { for (j = i; j <= NF; j++) names = names " " $j; break }
                if ($i != h) names = names " " $i
            }
            if ($1 == "127.0.0.1" && !done) { print "127.0.0.1 " h names; done = 1; next }
            if (names ~ /^ *$/ || names ~ /^ *#/) next
            print $1 names
        }
        END { if (!done) print "127.0.0.1 " h " localhost" }' /etc/hosts)
    printf '%s\n' "$new" >/etc/hosts
    hosts_ok || die "/etc/hosts fix did not work: $(getent hosts 127.0.0.1) / $(getent hosts "$CJ_HOST")"
}

# TCP port PORT on 127.0.0.1 accepts connections.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# write_if_changed FILE [MODE]: write stdin to FILE (mode 0644 unless given) if its
# content differs; return 0 if it changed.
write_if_changed() {
    local f=$1 mode=${2:-0644} tmp
    tmp=$(mktemp "$f.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -e $f ]] && cmp -s "$tmp" "$f"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$f"
    return 0
}

# A fingerprint of the calling script and this file: an env file written by another
# version of the scripts is not trusted by the fast path (the set-up runs again).
script_hash() { cat "$CJ_SCRIPT" "$CJ_DIR/common.sh" | sha256sum | cut -c1-16; }

# write_env NAME KEY=VALUE...: $CJ_STATE/NAME.env, shell- and dotenv-readable.
write_env() {
    local name=$1 kv
    shift
    {
        printf '# written by tests/schedulers/%s.sh (script-hash %s)\n' "$name" "$(script_hash)"
        for kv in "$@"; do printf '%s\n' "$kv"; done
    } >"$CJ_STATE/$name.env.tmp"
    mv -f "$CJ_STATE/$name.env.tmp" "$CJ_STATE/$name.env"
}

# env_current NAME: $CJ_STATE/NAME.env exists and was written by these scripts.
env_current() {
    local first
    first=$(head -n 1 "$CJ_STATE/$1.env" 2>/dev/null) || return 1
    [[ $first == *"(script-hash $(script_hash))" ]]
}

# Milliseconds since the epoch; ms_since START prints the seconds since START (0.1 s).
now_ms() { date +%s%3N; }
ms_since() {
    local d=$(($(now_ms) - $1))
    printf '%d.%d s' $((d / 1000)) $((d % 1000 / 100))
}
