#!/usr/bin/env bash
# A first push without internet access: builds a tiny OCI image (one layer holding hello.txt)
# with nothing but coreutils, tar and gzip, and copies it into a registry with skopeo.
#
# Usage: bash examples/first-push.sh [<host:port>/<repository>:<tag>] [extra skopeo copy flags…]
#   bash examples/first-push.sh                                    # localhost:5000/library/hello:v1
#   bash examples/first-push.sh localhost:5000/team-a/hello:v1 --dest-creds alice:alice-password
# Plain HTTP is assumed (--dest-tls-verify=false); add --dest-tls-verify=true for a TLS registry.
set -euo pipefail
dest=${1:-localhost:5000/library/hello:v1}
shift || true
command -v skopeo >/dev/null || { echo "first-push.sh: skopeo is not installed (Debian/Ubuntu: apt-get install skopeo)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
mkdir -p "$work/rootfs" "$layout/blobs/sha256"

# The layer: a reproducible tar (fixed owner and time), gzip-compressed without a timestamp.
printf 'hello from berth\n' >"$work/rootfs/hello.txt"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" hello.txt
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"

# put FILE: stores FILE as a blob of the layout, prints "<sha256 hex> <size>".
put() {
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$layout/blobs/sha256/$hex"
  echo "$hex $(stat -c %s "$1")"
}

case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
read -r layer_hex layer_size < <(put "$work/layer.tar.gz")
printf '{"architecture":"%s","os":"linux","config":{"Labels":{"org.opencontainers.image.title":"hello"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"examples/first-push.sh"}]}' \
  "$arch" "$diff_id" >"$work/config.json"
read -r config_hex config_size < <(put "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config_hex" "$config_size" "$layer_hex" "$layer_size" >"$work/manifest.json"
read -r manifest_hex manifest_size < <(put "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest_hex" "$manifest_size" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

skopeo copy --dest-tls-verify=false "$@" "oci:$layout:latest" "docker://$dest"
echo "pushed $dest (manifest sha256:$manifest_hex)"
