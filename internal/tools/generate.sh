#!/usr/bin/env bash
# Regenerates the mdatagen output (internal/metadata, internal/metadatatest,
# generated_*_test.go, documentation.md) from metadata.yaml with the pinned
# mdatagen of this tools module. mdatagen names the generated root package
# after the directory holding metadata.yaml, so it runs through a symlink
# named after the Go package, whatever the checkout's directory is called.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -f "$tmp/kafkabatcherexporter"; rmdir "$tmp"' EXIT
ln -s "$root" "$tmp/kafkabatcherexporter"
cd "$root/internal/tools"
go tool mdatagen "$tmp/kafkabatcherexporter/metadata.yaml"
