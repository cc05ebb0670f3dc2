#!/usr/bin/env bash
# Installs the Debian packages that the deployment checks in tests/deploy and the browser tests in tests/ui need:
#   docker-compose  validates docker-compose.yml and deploy/compose.workers.yml
#   prometheus      ships `prometheus` and `promtool` (config, rules and rule unit tests)
#   docker.io       the Docker daemon (`dockerd`) that tests/deploy/test_images.py builds and runs the images with
#   debootstrap     makes the Debian root file system of the local base image (deploy/ci/base-image.sh)
#   binutils        `strip`, which that script runs on the interpreter it copies in
#   chromium        the headless browser tests/ui drives (/usr/bin/chromium)
#   chromium-driver `chromedriver`, through which Selenium drives it (/usr/bin/chromedriver)
# Installs only what is missing, quietly and without prompts; safe to run on every CI start.
set -euo pipefail

declare -A wanted=([docker-compose]=docker-compose [promtool]=prometheus [prometheus]=prometheus [strip]=binutils
                  [dockerd]=docker.io [debootstrap]=debootstrap [chromium]=chromium [chromedriver]=chromium-driver)
missing=()
for binary in "${!wanted[@]}"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        package="${wanted[$binary]}"
        [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
