#!/usr/bin/env bash
# A private OpenSSH server on 127.0.0.1 for the remote (ssh) tests: its own host
# key, config and authorized_keys under $CLUSTERJOB_TEST_STATE/sshd, root login by
# key only, and an ssh_config with the host alias `cjtest`.
#
#   tests/schedulers/sshd.sh         install (if needed), start, verify
#   tests/schedulers/sshd.sh stop    stop this sshd (by PID)
#   tests/schedulers/sshd.sh status  exit 0 if `ssh -F .../ssh_config cjtest true` works
#
# Writes $CLUSTERJOB_TEST_STATE/sshd.env: SSH_CONFIG, SSH_HOST, SSH_PORT.
set -euo pipefail
CJ_NAME=sshd
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# rsync: the documented prologue/epilogue examples (tests/remote); tcsh, zsh, fish: the
# remote command line must mean the same to any login shell (tests/remote).
PACKAGES=(openssh-server openssh-client rsync tcsh zsh fish)
DIR=$CJ_STATE/sshd
PIDFILE=$CJ_RUN/sshd.pid
ENV_FILE=$CJ_STATE/sshd.env
ALIAS=cjtest
SSH_CONFIG=$DIR/ssh_config
FIRST_PORT=${CLUSTERJOB_TEST_SSH_PORT:-2222}

ssh_ok() {
    timeout 20 ssh -F "$SSH_CONFIG" "$ALIAS" true </dev/null >/dev/null 2>&1
}

healthy() {
    running "$PIDFILE" sshd && env_current sshd && [[ -s $SSH_CONFIG ]] && ssh_ok
}

# The port of the running sshd, or the first free one from $FIRST_PORT.
choose_port() {
    local port
    port=$(cat "$DIR/port" 2>/dev/null || true)
    if [[ $port =~ ^[0-9]+$ ]] && running "$PIDFILE" sshd; then
        printf '%s' "$port"
        return 0
    fi
    for ((port = FIRST_PORT; port < FIRST_PORT + 100; port++)); do
        port_open "$port" || {
            printf '%s' "$port"
            return 0
        }
    done
    die "no free port in $FIRST_PORT..$((FIRST_PORT + 99))"
}

write_files() {
    local port=$1 changed=1
    install -d -m 0700 "$DIR"
    if [[ ! -s $DIR/ssh_host_ed25519_key ]]; then
        log "generating the host key"
        ssh-keygen -q -t ed25519 -N '' -C "clusterjob-test-host" -f "$DIR/ssh_host_ed25519_key"
        rm -f "$DIR/known_hosts"
    fi
    if [[ ! -s $DIR/id_ed25519 ]]; then
        log "generating the client key $DIR/id_ed25519"
        ssh-keygen -q -t ed25519 -N '' -C "clusterjob-test-client" -f "$DIR/id_ed25519"
    fi
    write_if_changed "$DIR/authorized_keys" 0600 <"$DIR/id_ed25519.pub" || true
    printf '%s\n' "$port" >"$DIR/port"
    # StrictModes no: the path goes through /var/tmp (mode 1777), which sshd would
    # reject for an AuthorizedKeysFile.
    write_if_changed "$DIR/sshd_config" 0600 <<EOF || changed=0
# written by tests/schedulers/sshd.sh -- private test sshd, loopback only
Port $port
ListenAddress 127.0.0.1
HostKey $DIR/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel INFO
EOF
    write_if_changed "$SSH_CONFIG" 0644 <<EOF || true
# written by tests/schedulers/sshd.sh: ssh -F $SSH_CONFIG $ALIAS
Host $ALIAS
    HostName 127.0.0.1
    Port $port
    User root
    IdentityFile $DIR/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile $DIR/known_hosts
    BatchMode yes
    ConnectTimeout 10
    LogLevel ERROR
EOF
    return $((!changed))
}

up() {
    local t0 port
    t0=$(now_ms)
    if healthy; then
        log "sshd is already up ($(ms_since "$t0")): $ENV_FILE"
        return 0
    fi
    take_lock
    ensure_packages "${PACKAGES[@]}"
    port=$(choose_port)
    if write_files "$port" && running "$PIDFILE" sshd; then
        log "sshd_config changed: restarting sshd"
        stop_pid sshd "$PIDFILE" sshd
    fi
    # privilege separation directory (/run may be a fresh tmpfs)
    install -d -m 0755 -o root -g root /run/sshd
    if ! running "$PIDFILE" sshd; then
        /usr/sbin/sshd -t -f "$DIR/sshd_config" 2>"$CJ_LOGS/sshd-config-test.log" ||
            die_log "sshd -t rejects $DIR/sshd_config" "$CJ_LOGS/sshd-config-test.log"
        log "starting sshd on 127.0.0.1:$port"
        start_bg sshd root -- /usr/sbin/sshd -D -e -f "$DIR/sshd_config"
        wait_until 20 "sshd on port $port" port_open "$port" ||
            die_log "sshd did not start" "$CJ_LOGS/sshd.out"
    fi
    ssh -F "$SSH_CONFIG" "$ALIAS" true </dev/null >"$CJ_LOGS/ssh-check.log" 2>&1 ||
        die_log "ssh -F $SSH_CONFIG $ALIAS true failed" "$CJ_LOGS/ssh-check.log" "$CJ_LOGS/sshd.out"
    # the remote login shell must find the scheduler commands
    local c remote_path
    remote_path=$(ssh -F "$SSH_CONFIG" "$ALIAS" 'echo $PATH' </dev/null 2>/dev/null)
    for c in sbatch qconf; do
        if [[ -x /usr/bin/$c ]] && ! ssh -F "$SSH_CONFIG" "$ALIAS" "command -v $c" </dev/null >/dev/null 2>&1; then
            die "the remote login shell does not find $c (PATH=$remote_path)"
        fi
    done
    write_env sshd \
        "SSH_CONFIG=$SSH_CONFIG" \
        "SSH_HOST=$ALIAS" \
        "SSH_PORT=$port" \
        "SSH_IDENTITY=$DIR/id_ed25519" \
        "SSH_USER=root"
    log "sshd is up ($(ms_since "$t0")); try: ssh -F $SSH_CONFIG $ALIAS"
}

case ${1:-up} in
up | start) up ;;
stop)
    take_lock
    stop_pid sshd "$PIDFILE" sshd
    rm -f "$ENV_FILE"
    ;;
status) healthy ;;
*) die "usage: $0 [up|stop|status]" ;;
esac
