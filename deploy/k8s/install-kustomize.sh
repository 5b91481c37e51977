#!/usr/bin/env bash
# Install the pinned kustomize into <repo>/.local/bin if it is not already there.
#
# Idempotent: exits immediately when the pinned version is present. Builds the real
# binary from the Go module proxy (`go install`), so it needs Go but no network access
# beyond the module proxy. Prints the path of the binary on stdout.
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${repo_root}/.local/bin"
kustomize="${bin_dir}/kustomize"

installed_version() {
    # `kustomize version` prints e.g. "v5.8.1"; older builds print a struct.
    "${kustomize}" version 2>/dev/null | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true
}

if [[ -x "${kustomize}" && "$(installed_version)" == "${KUSTOMIZE_VERSION}" ]]; then
    echo "${kustomize}"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install-kustomize.sh: 'go' is required to install kustomize ${KUSTOMIZE_VERSION}" >&2
    exit 1
fi

mkdir -p "${bin_dir}"
echo "install-kustomize.sh: installing kustomize ${KUSTOMIZE_VERSION} into ${bin_dir}" >&2
GOBIN="${bin_dir}" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}" >&2

if [[ "$(installed_version)" != "${KUSTOMIZE_VERSION}" ]]; then
    echo "install-kustomize.sh: installed binary does not report ${KUSTOMIZE_VERSION}" >&2
    exit 1
fi
echo "${kustomize}"
