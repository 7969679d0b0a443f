#!/usr/bin/env bash
# Make sure a Docker engine answers and debootstrap is present (idempotent).
# Installs Debian's docker.io when dockerd is missing; starts the daemon through systemd when
# systemd is PID 1, else by hand in the background (log: /var/log/dockerd.log).
set -euo pipefail

readonly dockerd_log=/var/log/dockerd.log
readonly start_timeout_s=60

die() { echo "testbed-docker: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages and starts dockerd)"

missing_packages=()
command -v dockerd >/dev/null || missing_packages+=(docker.io)
command -v debootstrap >/dev/null || missing_packages+=(debootstrap)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null \
    || die "could not install ${missing_packages[*]}"
fi

docker_answers() { docker info >/dev/null 2>&1; }

how_started="already running"
if ! docker_answers; then
  # /run/systemd/system exists only when systemd booted the machine (sd_booted(3)).
  if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] \
     && command -v systemctl >/dev/null; then
    systemctl start docker || die "systemctl start docker failed (see: journalctl -u docker)"
    how_started="started by systemd"
  else
    # setsid: the daemon must outlive this script and the shell that ran it.
    setsid dockerd >>"$dockerd_log" 2>&1 </dev/null &
    how_started="started in the background, log $dockerd_log"
  fi
  deadline=$((SECONDS + start_timeout_s))
  until docker_answers; do
    [ "$SECONDS" -lt "$deadline" ] \
      || die "docker info did not answer within ${start_timeout_s} s ($how_started); last log lines:
$(tail -n 20 "$dockerd_log" 2>/dev/null)"
    sleep 1
  done
fi

echo "testbed-docker: engine $(docker version --format '{{.Server.Version}}') ($how_started)," \
  "$(debootstrap --version 2>/dev/null | head -n 1 || echo debootstrap present)"
