#!/usr/bin/env bash
# A Slurm cluster in Docker containers on this machine, for learning and trying: a controller,
# N compute nodes and a login node (JupyterHub published on 127.0.0.1), set up by the real
# site.yml. Not for production, and not the test bed (that is scripts/test.sh).
#   scripts/playground.sh up [--nodes N] [--release 12|13] [--hub-port PORT]   (again: no harm)
#   scripts/playground.sh down      removes its containers, its network and .cache/playground
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD  # paths below are relative to the checkout
# Names no molecule scenario uses (theirs: a12-ctl, hpc-slurm-l13, ...).
readonly prefix=playground network=hpc-slurm-playground label=hpc.slurm.playground
readonly dir=.cache/playground user=demo
export PATH="$root/.venv/bin:$PATH"

die() { echo "playground: $*" >&2; exit 1; }
usage() { sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 2; }

# Every container and network carrying the playground's label, and nothing else.
our_containers() { docker ps -a --filter "label=$label=$prefix" --format '{{.Names}}'; }

up() {
  local nodes=2 release="" hub_port=8000 started=$SECONDS
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=${2:-} ;;
      --release) release=${2:-} ;;
      --hub-port) hub_port=${2:-} ;;
      *) usage ;;
    esac
    shift 2 || usage
  done
  [[ $nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes takes 1 to 99, not '$nodes'"
  [[ $hub_port =~ ^[1-9][0-9]{0,4}$ ]] || die "--hub-port takes a port number, not '$hub_port'"

  [ -x .venv/bin/ansible-playbook ] || bash scripts/venv.sh
  docker info >/dev/null 2>&1 || bash scripts/testbed-docker.sh
  # A running playground keeps its release unless --release says otherwise.
  [ -n "$release" ] || release=$(docker inspect --format '{{.Config.Image}}' "$prefix-ctl" 2>/dev/null \
    | sed -n 's/.*:debian//p') || true
  release=${release:-13}
  [[ $release =~ ^1[23]$ ]] || die "--release takes 12 or 13, not '$release'"
  local have
  have=$(our_containers | grep -c -- '-node[0-9]*$' || true)
  [ "$have" -le "$nodes" ] || die "the playground has $have compute nodes; run 'down' first to have fewer"
  docker image inspect "hpc-slurm-test:debian$release" >/dev/null 2>&1 \
    || bash scripts/testbed-images.sh "$release"

  # The demo user's password, made once and kept with the inventory (a playground: printed below).
  mkdir -p "$dir" && chmod 0700 "$dir"
  if [ ! -s "$dir/demo-password.hash" ]; then
    (umask 077
     openssl rand -base64 12 | tr -d '/+=\n' >"$dir/demo-password"
     openssl passwd -6 -stdin <"$dir/demo-password" >"$dir/demo-password.hash")
  fi

  local settings
  settings=$(printf '{"playground_prefix": "%s", "playground_network": "%s", "playground_nodes": %d,
    "playground_release": %d, "playground_hub_port": %d, "playground_dir": "%s/%s", "playground_user": "%s"}' \
    "$prefix" "$network" "$nodes" "$release" "$hub_port" "$root" "$dir" "$user")
  ansible-playbook -i localhost, scripts/playground/containers.yml -e "$settings"
  ansible-playbook -i "$dir/inventory.yml" molecule/shared/prepare.yml
  ansible-playbook -i "$dir/inventory.yml" site.yml

  cat <<MSG

Playground up in $((SECONDS - started)) s: Debian $release, $prefix-ctl, $nodes compute node(s), $prefix-login.
For learning and trying only: the password below is printed and kept in $dir.
  user $user, password $(cat "$dir/demo-password")
  a shell on the login node:   docker exec -it $prefix-login su - $user
  then try:                    sinfo; srun -N$nodes hostname; sbatch --wrap 'hostname; sleep 60'; squeue
  JupyterHub:                  http://127.0.0.1:$hub_port/ (log in as $user)
  the inventory:               $dir/inventory.yml
  run the roles again:         .venv/bin/ansible-playbook -i $dir/inventory.yml site.yml
  remove it all:               scripts/playground.sh down
MSG
}

down() {
  docker info >/dev/null 2>&1 || die "docker does not answer: start it with scripts/testbed-docker.sh"
  local containers
  mapfile -t containers < <(our_containers)
  [ "${#containers[@]}" -eq 0 ] || docker rm --force --volumes "${containers[@]}" >/dev/null
  if docker network inspect "$network" >/dev/null 2>&1; then docker network rm "$network" >/dev/null; fi
  rm -rf "$dir"
  echo "playground: removed ${#containers[@]} container(s), network $network and $dir"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) [ $# -eq 1 ] || usage; down ;;
  *) usage ;;
esac
