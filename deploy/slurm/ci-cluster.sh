#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for CI and for trying the array script by hand:
# munge, slurmctld and slurmd as root, one partition of this host's CPUs, state under $SLURM_CI_DIR.
#
#   bash deploy/slurm/ci-cluster.sh start   # installs slurm-wlm and munge when missing (Debian)
#   bash deploy/slurm/ci-cluster.sh stop
#
# Needs root (the daemons and /etc/slurm). Prints why and exits 2 when it cannot start.
set -euo pipefail
state=${SLURM_CI_DIR:-/tmp/llmvolley-slurm}
conf=/etc/slurm/slurm.conf

start() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "slurm: not root, cannot start the daemons" >&2
        exit 2
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    fi
    mkdir -p "$state/spool" "$state/ctld" "$state/log" /etc/slurm /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
    pgrep -x munged >/dev/null || runuser -u munge -- munged
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    cat > "$conf" <<CONF
ClusterName=llmvolley-ci
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    # A cgroup.conf would be read by some plugins; none is used here.
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm: one node ($host, $cpus CPUs) up"
            return 0
        fi
        sleep 0.5
    done
    echo "slurm: the node did not come up; see $state/log" >&2
    sinfo >&2 || true
    tail -20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
    exit 2
}

stop() {
    scancel --user=root 2>/dev/null || true
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
