# Sourced by test.sh and tidy.sh: which modules this checkout publishes,
# at which version, and a module proxy that serves them from the checkout.
#
# Every go.mod of the checkout is a library module, published under the tag
# <dir>/<version> (the root's as <version>), except the modules below, which
# test, show or check the library and are never published. A new module is
# therefore published, and checked through the proxy, unless listed here.
unpublished=(example integration openapi scripts/modproxy)

# module_dirs prints every module directory of the checkout (testdata
# excluded), "." first.
module_dirs() {
	find . -name go.mod -not -path '*/testdata/*' -printf '%h\n' | sed 's|^\./||' | LC_ALL=C sort
}

# library_module_dirs prints the directories of the published modules.
library_module_dirs() {
	local d u skip
	for d in $(module_dirs); do
		skip=
		for u in "${unpublished[@]}"; do
			[ "$d" = "$u" ] && skip=1
		done
		if [ -z "$skip" ]; then
			echo "$d"
		fi
	done
}

# release_version prints the version the next release tags, the first
# "## vX.Y.Z" heading of CHANGELOG.md.
release_version() {
	local v
	v=$(sed -n 's/^## \(v[0-9][0-9.]*\).*/\1/p' CHANGELOG.md | head -n 1)
	if [ -z "$v" ]; then
		echo "CHANGELOG.md has no '## vX.Y.Z' heading" >&2
		return 1
	fi
	echo "$v"
}

# local_proxy DIR [MODCACHE] publishes the library modules of the checkout into DIR at
# the release version, prints their module@version lines, and exports what
# makes the go command resolve them there, outside the workspace, exactly as
# a user's go command resolves the tags once pushed: GOPROXY serves DIR
# first, then the machine's module cache and configured proxy; GONOSUMDB
# keeps the checksum database (which does not know these versions yet) out
# of it; GOMODCACHE is MODCACHE (default DIR/modcache), from which the
# modules of this repository are removed first, so no copy extracted from an
# earlier run (the same version with other content) is reused.
local_proxy() {
	local dir=$1 modcache=${2:-$1/modcache} version fallback libs
	version=$(release_version)
	libs=$(library_module_dirs | sed 's|^|../../|')
	mkdir -p "$dir/proxy"
	# shellcheck disable=SC2086 # one argument per module directory
	(cd scripts/modproxy && go run . -dir "$dir/proxy" -version "$version" -work ../../go.work $libs)
	fallback=$(go env GOPROXY)
	case "$fallback" in
	off | "") fallback=off ;;
	esac
	export GOPROXY="file://$dir/proxy,file://$(go env GOMODCACHE)/cache/download,$fallback"
	export GONOSUMDB="github.com/mongohttp/mongohttp${GONOSUMDB:+,$GONOSUMDB}"
	local ours
	for ours in "$modcache/github.com/mongohttp" "$modcache/cache/download/github.com/mongohttp"; do
		if [ -d "$ours" ]; then
			chmod -R u+w "$ours" # extracted modules are read-only
			rm -rf "$ours"
		fi
	done
	export GOMODCACHE="$modcache"
	# -trimpath: compiled packages are cached by module path and version,
	# not by their directory in this fresh module cache.
	export GOFLAGS="-mod=mod -modcacherw -trimpath"
	export GOWORK=off
}
