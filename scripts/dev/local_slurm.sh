#!/usr/bin/env bash
# A private one-node Slurm cluster on this machine, for the `slurm` tests and for trying
# `hydra/launcher=slurm` without a cluster (docs/cluster.md).
#
#   scripts/dev/local_slurm.sh start [DIR]    # prints `export LOSSD_SLURM_DIR=... SLURM_CONF=...`
#   scripts/dev/local_slurm.sh status [DIR]
#   scripts/dev/local_slurm.sh stop [DIR]
#
#   eval "$(scripts/dev/local_slurm.sh start)"   # then sbatch/squeue/scancel talk to it
#
# Everything lives in one state folder: DIR, else $LOSSD_SLURM_DIR, else (start only) a new
# temporary folder. It holds a MUNGE key, slurm.conf (this host, `hostname -s`, with the CPUs and
# memory `slurmd -C` reports; partition `debug`, Default=YES, MaxTime=INFINITE; JobRequeue=1;
# proctrack/linuxproc and task/none, so no cgroups are needed), the daemons' pid, log, state and
# spool files. `start` runs munged, slurmctld and slurmd in the background (SLURM_CONF points them
# at that slurm.conf) and waits until the node is idle; `stop` cancels the cluster's jobs and
# ends exactly the processes whose pid files it wrote. Needs root (slurmd runs jobs as any user)
# and the Debian/Ubuntu packages `slurm-wlm munge` (`apt-get install -y slurm-wlm munge`).
#
# Environment: LOSSD_SLURM_DIR (state folder), LOSSD_SLURM_PORT (first port tried for slurmctld;
# slurmd takes the next free one; default 6817), LOSSD_SLURM_PARTITION (default debug),
# LOSSD_SLURM_START_TIMEOUT (seconds to wait for an idle node; default 60).
set -euo pipefail

PATH="$PATH:/usr/sbin:/sbin"
PARTITION="${LOSSD_SLURM_PARTITION:-debug}"
TIMEOUT="${LOSSD_SLURM_START_TIMEOUT:-60}"

die() {
    echo "local_slurm: $*" >&2
    exit 1
}

say() {
    echo "local_slurm: $*" >&2
}

usage() {
    echo "usage: $0 start|stop|status [DIR]  (DIR defaults to \$LOSSD_SLURM_DIR)" >&2
    exit 2
}

state_dir() {  # the state folder of an existing cluster
    local dir="${1:-${LOSSD_SLURM_DIR:-}}"
    [[ -n "$dir" ]] || die "no state folder: pass DIR or set LOSSD_SLURM_DIR (start prints it)"
    [[ -f "$dir/slurm.conf" ]] || die "'$dir' holds no slurm.conf; was it made by '$0 start'?"
    echo "$dir"
}

# pid of daemon NAME (munged, slurmctld, slurmd) if its pid file names a live process of that name
live_pid() {
    local dir=$1 name=$2 pid
    [[ -f "$dir/run/$name.pid" ]] || return 1
    pid=$(tr -dc '0-9' <"$dir/run/$name.pid")
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1  # a recycled pid
    echo "$pid"
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {  # first free TCP port >= $1
    local port=$1
    while ! port_free "$port"; do
        port=$((port + 1))
        ((port < $1 + 200)) || die "no free TCP port in $1..$((port - 1)); set LOSSD_SLURM_PORT"
    done
    echo "$port"
}

write_config() {
    local dir=$1 host node ctld_port slurmd_port
    host=$(hostname -s)
    # NodeName=<host> CPUs=... Boards=... SocketsPerBoard=... CoresPerSocket=... RealMemory=...
    node=$(slurmd -C | head -n 1)
    [[ "$node" == NodeName=* ]] || die "'slurmd -C' printed '$node'; expected a NodeName=... line"
    node="${node/NodeName=* CPUs=/NodeName=$host NodeAddr=127.0.0.1 CPUs=}"
    ctld_port=$(free_port "${LOSSD_SLURM_PORT:-6817}")
    slurmd_port=$(free_port $((ctld_port + 1)))
    cat >"$dir/slurm.conf" <<EOF
# Written by scripts/dev/local_slurm.sh: a private one-node cluster (state in $dir).
ClusterName=lossd-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it starts again (default 120 s)
AuthInfo=socket=$dir/run/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
# a requeued job starts as soon as it may (default passes: 30 s backfill, 60 s main loop)
SchedulerParameters=bf_interval=2,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Jobs may be requeued (scontrol requeue: what submitit does on a time limit or preemption)
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
KillWait=10
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    local dir="${1:-${LOSSD_SLURM_DIR:-}}" fresh=0 host deadline state tool
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || die "'$tool' not found; apt-get install -y slurm-wlm munge"
    done
    [[ "$(id -u)" == 0 ]] || die "needs root (slurmd starts jobs as their user)"
    if [[ -z "$dir" ]]; then
        dir=$(mktemp -d -t lossd-slurm.XXXXXX)
        fresh=1
    fi
    mkdir -p "$dir"/{run,log,state,spool}
    chmod 700 "$dir" "$dir/run"
    if live_pid "$dir" slurmctld >/dev/null && live_pid "$dir" slurmd >/dev/null \
        && live_pid "$dir" munged >/dev/null; then
        say "already running in $dir"
    else
        stop_daemons "$dir"  # leftovers of a half-started cluster
        ((fresh)) || rm -rf "$dir"/state/* "$dir"/spool/*
        [[ -f "$dir/munge.key" ]] || {
            head -c 1024 /dev/urandom >"$dir/munge.key"
            chmod 400 "$dir/munge.key"
        }
        write_config "$dir"
        export SLURM_CONF="$dir/slurm.conf"
        munged --force --key-file="$dir/munge.key" --socket="$dir/run/munge.socket" \
            --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
            --seed-file="$dir/state/munged.seed" \
            || die "munged did not start; see $dir/log/munged.log"
        slurmctld -i || die "slurmctld did not start; see $dir/log/slurmctld.log"
        slurmd || die "slurmd did not start; see $dir/log/slurmd.log"
    fi
    export SLURM_CONF="$dir/slurm.conf"
    host=$(hostname -s)
    deadline=$((SECONDS + TIMEOUT))
    state=""
    while ((SECONDS < deadline)); do
        state=$(sinfo -h -n "$host" -o %t 2>/dev/null | head -n 1 || true)
        [[ "$state" == idle || "$state" == mix || "$state" == alloc ]] && break
        # a node that registered as down or drained (e.g. after a restart) is brought back
        [[ "$state" == down* || "$state" == drain* ]] \
            && scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    if [[ "$state" != idle && "$state" != mix && "$state" != alloc ]]; then
        tail -n 5 "$dir"/log/*.log >&2 || true
        die "node '$host' not idle after ${TIMEOUT}s (sinfo state: '${state:-none}'); logs in $dir/log"
    fi
    say "node $host is $state (partition $PARTITION); state in $dir"
    echo "export LOSSD_SLURM_DIR=$dir"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

stop_daemons() {
    local dir=$1 name pid _
    for name in slurmd slurmctld munged; do
        pid=$(live_pid "$dir" "$name") || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            [[ -d "/proc/$pid" ]] || break
            sleep 0.2
        done
        if [[ -d "/proc/$pid" ]]; then
            say "$name ($pid) ignored SIGTERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/run/$name.pid"
    done
}

stop() {
    local dir jobs _
    dir=$(state_dir "${1:-}")
    export SLURM_CONF="$dir/slurm.conf"
    if live_pid "$dir" slurmctld >/dev/null; then
        jobs=$(squeue -h -o %A 2>/dev/null || true)
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086  # one job id per word
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do  # their job steps end with them
                [[ -z "$(squeue -h -o %A 2>/dev/null || true)" ]] && break
                sleep 1
            done
        fi
    fi
    stop_daemons "$dir"
    say "stopped (state kept in $dir)"
}

status() {
    local dir name pid code=0
    dir=$(state_dir "${1:-}")
    export SLURM_CONF="$dir/slurm.conf"
    for name in munged slurmctld slurmd; do
        if pid=$(live_pid "$dir" "$name"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            code=3
        fi
    done
    if ((code == 0)); then
        sinfo
        squeue
    fi
    return "$code"
}

case "${1:-}" in
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    status) status "${2:-}" ;;
    *) usage ;;
esac
