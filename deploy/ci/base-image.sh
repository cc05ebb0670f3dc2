#!/usr/bin/env bash
# Makes the local base image `bosun-base:bookworm` that stands in for python:3.11-slim on a machine
# that reaches Debian's package archive but no container registry:
#   1. debootstrap --variant=minbase bookworm with python3, python3-venv, python3-pip, ca-certificates
#   2. import that root file system as the image `bosun-base-rootfs`
#   3. build deploy/ci/Dockerfile.base on top (python/pip on the PATH, the host's CA bundle)
# Where the image exists already, nothing happens (delete it to rebuild). Needs root and a running
# Docker daemon (deploy/ci/docker.sh). Prints the image name as its last line.
#   docker build --build-arg BASE_IMAGE=bosun-base:bookworm -f deploy/Dockerfile.api -t bosun-api .
set -euo pipefail

image=${BOSUN_BASE_IMAGE:-bosun-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi
work=$(mktemp -d /var/tmp/bosun-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! docker image inspect bosun-base-rootfs >/dev/null 2>&1; then
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # What an image needs no copy of (python:3.11-slim has none either): apt's package lists and
    # downloaded .debs, documentation, manual pages and translations.
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
        "$work"/rootfs/var/cache/apt/archives/*.deb \
        "$work"/rootfs/usr/share/{doc,man,info,locale}/*
    tar -C "$work/rootfs" -c . | docker import - bosun-base-rootfs >/dev/null
    rm -rf "$work/rootfs"
fi
cp "$here/Dockerfile.base" "$work/Dockerfile"
cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work" >/dev/null
echo "$image"
