#!/usr/bin/env bash
# Runs every check of every module: gofmt, go vet, staticcheck, the tests
# under the race detector, and each fuzz target of the root module briefly
# (its seed corpus, then FUZZTIME of fuzzing; default 10s, 0 for seeds only).
#
# Needs only Go: staticcheck and the embedded test server come from the Go
# module proxy on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

staticcheck="honnef.co/go/tools/cmd/staticcheck@v0.8.2"
fuzztime="${FUZZTIME:-10s}"
modules=(.)
# openapi/ checks the example's OpenAPI document against its end-to-end,
# hostile, write and generated-client suites.
for m in integration otelmongohttp example openapi; do
	[ -f "$m/go.mod" ] && modules+=("$m")
done

step() { printf '\n== %s\n' "$*"; }

step "root module requires only the driver"
direct=$(go list -m -f '{{if and (not .Main) (not .Indirect)}}{{.Path}}{{end}}' all)
if [ "$direct" != "go.mongodb.org/mongo-driver/v2" ]; then
	echo "the root module must require only the driver; it requires: $direct" >&2
	exit 1
fi
if go list -m all | grep -i -E 'ferretdb|go-chi|gorilla'; then
	echo "test servers and routers belong in nested modules, not the root build list" >&2
	exit 1
fi

for m in "${modules[@]}"; do
	step "module $m: gofmt, vet, staticcheck"
	(
		cd "$m"
		unformatted=$(gofmt -l .)
		if [ -n "$unformatted" ]; then
			echo "gofmt would change:" >&2
			echo "$unformatted" >&2
			exit 1
		fi
		go vet ./...
		go run "$staticcheck" ./...
	)
done

# The example's /live page is tested in headless Chromium (Debian's package).
if [ -f example/go.mod ] && ! command -v chromium >/dev/null; then
	step "installing chromium for the example's /live page test"
	apt-get update && apt-get install -y chromium
fi

for m in "${modules[@]}"; do
	step "module $m: go test -race"
	# Only the packages that have tests: go test would otherwise build the
	# others too, with the race detector (the integration module's FerretDB
	# program among them), for nothing vet has not checked.
	(
		cd "$m"
		pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
		go test -race -count=1 $pkgs
	)
done

# Every package of the root module that has fuzz targets, as package:target.
fuzzers=""
for pkg in $(go list ./...); do
	list=$(go test -list '^Fuzz' "$pkg") || {
		echo "listing the fuzz targets of $pkg failed" >&2
		exit 1
	}
	for f in $(grep '^Fuzz' <<<"$list" || true); do
		fuzzers+=" $pkg:$f"
	done
done
for target in $fuzzers; do
	pkg=${target%%:*} f=${target#*:}
	if [ "$fuzztime" = "0" ]; then
		continue # the seed corpus already ran with the tests above
	fi
	step "fuzz $pkg $f for $fuzztime"
	out=$(mktemp)
	if ! go test -run '^$' -fuzz "^${f}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$out"; then
		# Go 1.26's fuzzing coordinator can stop with "context deadline
		# exceeded" on a loaded machine without any failing input (fixed in
		# Go 1.27): run that target once more. A real failure writes its input
		# under testdata/fuzz and fails again.
		if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			step "fuzz $pkg $f again (the fuzzing coordinator stalled)"
			go test -run '^$' -fuzz "^${f}\$" -fuzztime "$fuzztime" "$pkg"
		else
			rm -f "$out"
			exit 1
		fi
	fi
	rm -f "$out"
done

step "all checks passed"
