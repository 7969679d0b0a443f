#!/usr/bin/env bash
# The hand-run floor for benchmarks/converge.py: the steps of the tutorials in shared/seeds as
# one shell script, over `docker exec`, each step on every node at once. No checks, no
# validation, no idempotence: a fresh cluster and nothing more.
#   apt-get update and install (the packages the roles install) > one munge key, munge:munge
#   0400 > slurm.conf from `slurmd -C` > start slurmctld, then slurmd > wait until all are idle.
# Usage: benchmarks/hand_run.sh CONTROLLER [COMPUTE...]  (no COMPUTE: the controller computes)
set -euo pipefail
controller=$1; shift
computes=("$@")
[ ${#computes[@]} -gt 0 ] || computes=("$controller")
mapfile -t hosts < <(printf '%s\n' "$controller" "${computes[@]}" | sort -u)
workdir=$(mktemp -d); trap 'rm -rf "$workdir"' EXIT

on_each() {  # on_each "HOST..." COMMAND: run a shell COMMAND (HOST in $host) on each host at once
  local pids=() host
  for host in $1; do
    docker exec -i -e host="$host" "$host" sh -c "$2" < "${stdin:-/dev/null}" &
    pids+=($!)
  done
  local pid; for pid in "${pids[@]}"; do wait "$pid"; done
}

packages_of() {
  local packages="munge slurm-client"
  [ "$1" = "$controller" ] && packages+=" slurmctld"
  [[ " ${computes[*]} " == *" $1 "* ]] && packages+=" slurmd"
  echo "$packages"
}
pids=()
for host in "${hosts[@]}"; do
  docker exec -e DEBIAN_FRONTEND=noninteractive "$host" sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $(packages_of "$host") >/dev/null" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

head -c 1024 /dev/urandom > "$workdir/munge.key"
stdin=$workdir/munge.key on_each "${hosts[*]}" \
  'cat > /etc/munge/munge.key && chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key &&
   systemctl restart munge'

{
  cat <<EOF
ClusterName=bench
SlurmctldHost=$controller
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
EOF
  for host in "${computes[@]}"; do docker exec "$host" slurmd -C | head -n 1; done
  echo "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} > "$workdir/slurm.conf"
stdin=$workdir/slurm.conf on_each "${hosts[*]}" 'cat > /etc/slurm/slurm.conf && chmod 0644 /etc/slurm/slurm.conf'

docker exec "$controller" systemctl restart slurmctld
on_each "${computes[*]}" 'systemctl restart slurmd'
until [ "$(docker exec "$controller" sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" -eq "${#computes[@]}" ]; do
  sleep 0.2
done
