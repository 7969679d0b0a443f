#!/usr/bin/env bash
# Build the local test images hpc-slurm-test:debian12 (bookworm) and :debian13 (trixie):
# debootstrap minbase + systemd as PID 1, with the Slurm, munge, MariaDB and Jupyter .debs
# already in the apt cache so converges do not download them. No registry is reachable, hence no FROM image.
# Usage: scripts/testbed-images.sh [12] [13]   (default: both)
# An image is rebuilt only when it is absent or was built by another version of this script.
set -euo pipefail

readonly image_repo=hpc-slurm-test
readonly recipe_label=hpc.slurm.recipe
readonly keyring=/usr/share/keyrings/debian-archive-keyring.gpg
readonly base_packages=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,procps,ca-certificates,debian-archive-keyring
# Downloaded into /var/cache/apt/archives, not installed: the roles install them.
readonly cached_packages=(munge slurmctld slurmd slurm-client slurm-wlm mariadb-server slurmdbd python3-pymysql
  jupyterhub node-configurable-http-proxy sudo python3-jupyter-server python3-venv python3-pip)
# What hpc.slurm.jupyterhub installs that one release has and the other does not.
cached_packages_of() {
  case $1 in
    12) echo python3-notebook ;;
    13) echo jupyterlab python3-ipykernel ;;
  esac
}
# With every capability added (Apptainer scenarios) this unit fails on Debian 13 ("Failed to
# initialize libkmod context") and degrades the system; modules belong to the host kernel anyway.
readonly masked_units=(systemd-modules-load.service)

die() { echo "testbed-images: $*" >&2; exit 1; }

script_path=$(readlink -f "$0")
recipe=$(sha256sum "$script_path" | cut -d' ' -f1)

codename_of() {
  case $1 in
    12) echo bookworm ;;
    13) echo trixie ;;
    *) die "unknown Debian version '$1' (use 12 and/or 13)" ;;
  esac
}

# Prints "MIRROR_URI SECURITY_URI" (security may be empty) from the host's apt sources, so no
# registry host name is ever written into this repository.
host_apt_uris() {
  local deb822=/etc/apt/sources.list.d/debian.sources one_line=/etc/apt/sources.list
  if [ -r "$deb822" ]; then
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = uris = suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          key = tolower(line); sub(/:.*/, "", key)
          value = line; sub(/^[^:]*:[ \t]*/, "", value)
          if (key == "types") types = value
          else if (key == "uris") uris = value
          else if (key == "suites") suites = value
          else if (key == "enabled") enabled = tolower(value)
        }
        if (enabled == "no" || (" " types " ") !~ / deb /) next
        split(uris, uri, /[ \t]+/)
        if (suites ~ /-security/) { if (security == "") security = uri[1] }
        else if (mirror == "") mirror = uri[1]
      }
      END { print mirror, security }' "$deb822"
  elif [ -r "$one_line" ]; then
    awk '$1 == "deb" {
        sub(/\[[^]]*\][ \t]*/, "")
        if ($3 ~ /-security/) { if (security == "") security = $2 }
        else if (mirror == "") mirror = $2
      }
      END { print mirror, security }' "$one_line"
  fi
}

image_recipe() {
  docker image inspect --format "{{ index .Config.Labels \"$recipe_label\" }}" "$1" 2>/dev/null || true
}

write_apt_sources() {
  local rootfs=$1 codename=$2
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
      "$mirror" "$codename" "$codename" "$keyring"
    if [ -n "$security_mirror" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
        "$security_mirror" "$codename" "$keyring"
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
}

prepare_for_systemd_in_docker() {
  local rootfs=$1
  # Empty, not absent: systemd then uses a transient id, so every container gets its own.
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/var/lib/dbus/machine-id"
  chroot "$rootfs" systemctl mask --quiet "${masked_units[@]}"
  # Docker bind-mounts its own; leftovers from the build host must not leak into the image.
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
}

build_image() {
  local version=$1 codename rootfs image started
  codename=$(codename_of "$version")
  image=$image_repo:debian$version
  rootfs=$work_dir/$codename
  started=$SECONDS

  debootstrap --variant=minbase --components=main --keyring="$keyring" \
    --include="$base_packages" "$codename" "$rootfs" "$mirror" \
    || die "$image: debootstrap $codename from $mirror failed"
  write_apt_sources "$rootfs" "$codename"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  # No daemon may start inside the chroot: it would run on the build host.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" apt-get update || die "$image: apt-get update in the rootfs failed"
  # debootstrap takes only the release suite; bring in -updates and -security like a real host.
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get dist-upgrade -y \
    || die "$image: apt-get dist-upgrade in the rootfs failed"
  # Both with and without Recommends: apt installs them unless told not to, and roles may differ.
  local recommends extra
  read -ra extra <<<"$(cached_packages_of "$version")"
  for recommends in --no-install-recommends --install-recommends; do
    DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install --download-only -y \
      "$recommends" "${cached_packages[@]}" "${extra[@]}" \
      || die "$image: downloading ${cached_packages[*]} ${extra[*]} ($recommends) into the apt cache failed"
  done
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  prepare_for_systemd_in_docker "$rootfs"

  # container=docker makes systemd skip units that have ConditionVirtualization=!container.
  tar --numeric-owner -C "$rootfs" -c . \
    | docker import \
        --change 'CMD ["/lib/systemd/systemd"]' \
        --change 'ENV container=docker' \
        --change "LABEL $recipe_label=$recipe" \
        --message "debootstrap $codename minbase by scripts/testbed-images.sh" \
        - "$image" >/dev/null \
    || die "$image: docker import failed"
  rm -rf "$rootfs"
  echo "$image: built in $((SECONDS - started)) s"
}

remove_work_dir() {
  local mount_point
  # A build stopped half-way can leave debootstrap's /proc or /sys mounted in its rootfs.
  awk -v dir="$work_dir/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r mount_point; do umount --lazy "$mount_point" || true; done
  rm -rf --one-file-system "$work_dir"
}

build_pids=()
stop_builds() {
  local pid
  for pid in "${build_pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  wait
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"
  command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/testbed-docker.sh"
  docker info >/dev/null 2>&1 || die "docker does not answer: run scripts/testbed-docker.sh"

  local versions=("$@")
  [ "${#versions[@]}" -gt 0 ] || versions=(12 13)

  local version to_build=()
  for version in "${versions[@]}"; do
    codename_of "$version" >/dev/null
    if [ "$(image_recipe "$image_repo:debian$version")" = "$recipe" ]; then
      echo "$image_repo:debian$version: up to date"
    else
      to_build+=("$version")
    fi
  done
  [ "${#to_build[@]}" -gt 0 ] || return 0

  read -r mirror security_mirror < <(host_apt_uris)
  [ -n "${mirror:-}" ] \
    || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  if [ -z "${security_mirror:-}" ]; then
    echo "testbed-images: no security source on the host; images get none" >&2
  fi

  work_dir=$(mktemp -d /var/tmp/hpc-slurm-images.XXXXXX)
  trap remove_work_dir EXIT

  # Concurrent builds overlap one build's downloads with the other's unpacking: measured on
  # 2 cores, both images in 153-195 s concurrently against 205-267 s one after the other.
  # Monitor mode gives each build its own process group, so an interrupt stops all of it.
  local logs=() failed=0 i
  trap 'stop_builds; exit 130' INT TERM
  set -m
  for version in "${to_build[@]}"; do
    build_image "$version" >"$work_dir/debian$version.log" 2>&1 &
    build_pids+=("$!")
    logs+=("$work_dir/debian$version.log")
  done
  set +m
  for i in "${!build_pids[@]}"; do
    if wait "${build_pids[$i]}"; then
      tail -n 1 "${logs[$i]}"
    else
      failed=1
      echo "testbed-images: building $image_repo:debian${to_build[$i]} failed; last lines of its log:" >&2
      tail -n 25 "${logs[$i]}" >&2
    fi
  done
  return "$failed"
}

main "$@"
