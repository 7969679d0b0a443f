#!/usr/bin/env bash
# Make sure a headless browser for tests/integration/test_jupyterhub.py is present (idempotent):
# Debian's chromium and its WebDriver, chromium-driver, which Selenium drives.
set -euo pipefail

die() { echo "testbed-browser: $*" >&2; exit 1; }

missing_packages=()
command -v chromium >/dev/null || missing_packages+=(chromium)
command -v chromedriver >/dev/null || missing_packages+=(chromium-driver)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root to install ${missing_packages[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null \
    || die "could not install ${missing_packages[*]}"
fi
chromium --version && chromedriver --version
