#!/usr/bin/env bash
# Everything the tests need and every test, on a fresh Debian machine (as root):
# Python tools, Docker engine, a headless browser (Chromium), test images, lint, unit tests,
# then the molecule scenarios (converge, idempotence, verify) on Debian 12 and 13.
#   scripts/test.sh                 all of it
#   RUNS="cluster:13" scripts/test.sh    a part of the molecule matrix (SCENARIO:DEBIAN_RELEASE)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
logs=$root/.cache/test-logs
mkdir -p "$logs"
# Molecule runs as SCENARIO:DEBIAN_RELEASE, two at a time (they wait on daemons more than CPU),
# longest first.
RUNS=${RUNS:-"apptainer:13 login:13 login:12 faults:12 accounting:13 accounting:12 default:13 default:12 cluster:13 cluster:12 nosystemd:12"}
PARALLEL=${PARALLEL:-2}

passed=0; failed=0; summary=()
stage() {  # stage NAME COMMAND...: run, time, keep the log, show its tail if it fails
  local name=$1; shift
  local log="$logs/$name.log" start=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); summary+=("$(printf 'ok    %5ss  %s' $((SECONDS - start)) "$name")")
  else
    failed=$((failed + 1)); summary+=("$(printf 'FAIL  %5ss  %s' $((SECONDS - start)) "$name")")
    echo "---- $name failed; last lines of $log:"; tail -n 150 "$log"
  fi
  echo "${summary[-1]}"
}

molecule_run() {  # molecule_run SCENARIO RELEASE
  DEBIAN_RELEASE=$2 MOLECULE_EPHEMERAL_DIRECTORY=$root/.cache/molecule/$1-d$2 \
    molecule test --scenario-name "$1"
}

stage tools bash scripts/venv.sh || true
export PATH="$root/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
stage docker-engine bash scripts/testbed-docker.sh
stage browser bash scripts/testbed-browser.sh
stage test-images bash scripts/testbed-images.sh $(printf '%s\n' $RUNS | cut -d: -f2 | sort -u)
stage yamllint yamllint --strict .
stage ansible-lint ansible-lint
stage unit-tests python -m pytest -q -p no:cacheprovider tests/unit

# apptainer scenario: its offline inputs, prepared once and handed to molecule through the
# environment (molecule/apptainer/molecule.yml). The Apptainer tarball comes from shared/artifacts
# beside the checkout; the Go archive is made from Debian's packages into .cache/artifacts.
apptainer_inputs() {
  local artifacts=${APPTAINER_ARTIFACTS:-$(dirname "$root")/shared/artifacts} cache=$root/.cache/artifacts
  local source go
  mkdir -p "$cache" && rm -f "$cache/apptainer.env"
  source=$(ls -v "$artifacts"/apptainer-*.tar.gz | tail -n 1) && [ -r "$source.sha256" ] || return 1
  go=$(ls -v "$cache"/go*.linux-*.tar.gz 2>/dev/null | tail -n 1)
  [ -n "$go" ] || go=$(bash "$artifacts/make-go-tarball.sh" "$cache" | tail -n 1) || return 1
  printf 'export %q\n' "APPTAINER_SOURCE=$source" "APPTAINER_SOURCE_SHA256=$(cut -d' ' -f1 "$source.sha256")" \
    "APPTAINER_GO_ARCHIVE=$go" "APPTAINER_GO_ARCHIVE_SHA256=$(sha256sum "$go" | cut -d' ' -f1)" \
    "APPTAINER_GO_VERSION=$(basename "$go" | sed -E 's/^go([0-9.]+)\.linux-.*/\1/')" > "$cache/apptainer.env"
  cat "$cache/apptainer.env"
}
if [[ " $RUNS " == *" apptainer:"* ]]; then
  stage apptainer-inputs apptainer_inputs
  [ -r "$root/.cache/artifacts/apptainer.env" ] && . "$root/.cache/artifacts/apptainer.env"
fi

running=()
for run in $RUNS; do
  scenario=${run%:*} release=${run#*:}
  name="molecule-$scenario-debian$release"
  stage "$name" molecule_run "$scenario" "$release" > "$logs/$name.stage" &
  running+=($!)
  if [ ${#running[@]} -ge "$PARALLEL" ]; then wait -n || true; running=($(jobs -pr)); fi
done
wait
for run in $RUNS; do
  stage_file="$logs/molecule-${run%:*}-debian${run#*:}.stage"
  cat "$stage_file"
  line=$(grep -E '^(ok|FAIL) ' "$stage_file" || echo "FAIL  ?  molecule $run (no result)")
  summary+=("$line")
  case $line in ok*) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
done

echo
echo "Stages (wall time):"; printf '  %s\n' "${summary[@]}"
grep -h -E '^=+ .*(passed|failed).* in [0-9.]+s' "$logs"/*.log | sed 's/^/  pytest: /' || true
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
