#!/usr/bin/env bash
# Create .venv with the pinned controller tools (idempotent: reinstalls only when
# requirements.txt changed). Works on a fresh Debian machine: installs python3-venv if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "venv: .venv is up to date"
  exit 0
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements.txt
echo "$want" > "$stamp"
echo "venv: installed $(.venv/bin/ansible --version | head -1)"
