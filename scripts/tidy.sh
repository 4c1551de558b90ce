#!/usr/bin/env bash
# Runs go mod tidy in every module of the checkout.
#
# go mod tidy ignores go.work, and the modules require each other at the
# release version (see CHANGELOG.md), which no proxy serves before the tags
# are pushed: this serves the checkout's library modules from a module proxy
# in a temporary directory for the time of the tidy (see modules.sh), then
# takes their lines out of the go.sum files again, since they hash the
# checkout, not the release. Inside the workspace no go.sum needs them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/modules.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
	# A module cache of its own, kept between runs: tidy loads the tests of
	# the dependencies too, which the workspace's builds never download.
	local_proxy "$tmp" "${XDG_CACHE_HOME:-$HOME/.cache}/mongohttp-tidy/modcache" >/dev/null
	for d in $(module_dirs); do
		echo "go mod tidy: $d"
		(cd "$d" && go mod tidy)
	done
)
for d in $(module_dirs); do
	if [ -f "$d/go.sum" ]; then
		sed -i '/^github\.com\/mongohttp\/mongohttp[/ ]/d' "$d/go.sum"
	fi
done
go mod download # the workspace's own sums, in go.work.sum
