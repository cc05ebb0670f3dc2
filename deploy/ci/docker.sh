#!/usr/bin/env bash
# Makes sure a Docker daemon answers on the default socket, for tests/deploy/test_images.py.
# Where one answers already, nothing happens. Otherwise `dockerd` (Debian's docker.io, see
# system-packages.sh) is started in the background with the overlay2 storage driver and left
# running; its log goes to /var/log/bosun-dockerd.log. Exits non-zero, with the reason, where no
# daemon can be started (no dockerd binary, not root, or it did not come up).
set -euo pipefail

up() { docker info >/dev/null 2>&1; }

up && exit 0
if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd not installed (deploy/ci/system-packages.sh installs docker.io)" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "starting dockerd needs root" >&2
    exit 1
fi
log=/var/log/bosun-dockerd.log
# setsid: the daemon outlives the test run that started it, and its signals are its own.
setsid dockerd --storage-driver overlay2 >>"$log" 2>&1 </dev/null &
for _ in $(seq 120); do
    up && exit 0
    sleep 0.5
done
echo "dockerd did not come up in 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
