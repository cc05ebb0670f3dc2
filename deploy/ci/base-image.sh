#!/usr/bin/env bash
# Makes a local base image that stands in for python:3.11-slim on a machine that reaches Debian's
# package archive but no container registry:
#   1. debootstrap --variant=minbase bookworm, with the shared libraries CPython's modules load;
#   2. the build machine's own CPython 3.11 (the interpreter requirements.lock was made and
#      tested with; $PYTHON, default python3.11) copied to /usr/local, where the official image
#      keeps its interpreter, stripped, without its test suites, site-packages or static library;
#   3. imported as `bosun-base-rootfs:<tag>`, then deploy/ci/Dockerfile.base on top: pip from
#      ensurepip, `python`/`pip` on the PATH, the machine's CA bundle.
# Debian 12's own python3 (3.11.2) cannot stand in: the lock pins releases that need 3.11.5 or
# newer. Where the image exists already, nothing happens (delete it to rebuild). Needs root and a
# running Docker daemon (deploy/ci/docker.sh). Prints the image name as its last line; use it as
#   docker build --build-arg BASE_IMAGE=<that name> -f deploy/Dockerfile.api -t bosun-api .
set -euo pipefail

python=${PYTHON:-python3.11}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
read -r prefix version full < <("$python" -c \
    'import sys; print(sys.base_prefix, "%d.%d" % sys.version_info[:2], "%d.%d.%d" % sys.version_info[:3])')
if [[ $prefix == /usr ]]; then
    echo "$python is a distribution's own Python (prefix /usr); set PYTHON to a self-contained build" >&2
    exit 1
fi
tag="py$full-bookworm"
image=${BOSUN_BASE_IMAGE:-bosun-base:$tag}

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi
work=$(mktemp -d /var/tmp/bosun-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! docker image inspect "bosun-base-rootfs:$tag" >/dev/null 2>&1; then
    libs=ca-certificates,libbz2-1.0,libffi8,liblzma5,libncursesw6,libnsl2,libsqlite3-0,libssl3,libuuid1,zlib1g
    debootstrap --variant=minbase --include="$libs" bookworm "$work/rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # What an image needs no copy of (python:3.11-slim has none either): apt's package lists and
    # downloaded .debs, documentation, manual pages and translations.
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
        "$work"/rootfs/var/cache/apt/archives/*.deb \
        "$work"/rootfs/usr/share/{doc,man,info,locale}/*
    stdlib="lib/python$version"
    tar -C "$prefix" -c --exclude="$stdlib/test" --exclude="$stdlib/site-packages/*" \
        --exclude="$stdlib/config-*" --exclude="$stdlib/idlelib" --exclude="$stdlib/tkinter" \
        --exclude="$stdlib/turtledemo" --exclude="$stdlib/lib-dynload/_tkinter*" \
        --exclude="$stdlib/*/test" --exclude="$stdlib/*/tests" --exclude="*.opt-[12].pyc" \
        "bin/python$version" "lib/libpython$version.so.1.0" "lib/libpython$version.so" lib/libpython3.so "$stdlib" "include/python$version" \
        | tar -C "$work/rootfs/usr/local" -x
    # Symbols are for debuggers; the official image strips its interpreter too.
    strip --strip-unneeded "$work/rootfs/usr/local/bin/python$version" "$work/rootfs/usr/local/lib/libpython$version.so.1.0" \
        "$work/rootfs/usr/local/$stdlib"/lib-dynload/*.so
    tar -C "$work/rootfs" -c . | docker import - "bosun-base-rootfs:$tag" >/dev/null
    rm -rf "$work/rootfs"
fi
sed "s|^FROM bosun-base-rootfs$|FROM bosun-base-rootfs:$tag|; s|@VERSION@|$version|g" "$here/Dockerfile.base" \
    >"$work/Dockerfile"
cp /etc/ssl/certs/ca-certificates.crt "$work/ca-certificates.crt"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work" >/dev/null
echo "$image"
