#!/usr/bin/env bash
# Runs every check of every module: gofmt, go vet, staticcheck, the tests
# under the race detector, and each fuzz target of the root module briefly
# (its seed corpus, then FUZZTIME of fuzzing; default 3s, 0 for seeds only).
# The fuzzing here is a smoke run that keeps the whole suite under 15
# minutes on 2 cores; fuzz longer before a release, e.g. FUZZTIME=1m.
#
# Needs only Go: staticcheck and the embedded test server come from the Go
# module proxy on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

staticcheck="honnef.co/go/tools/cmd/staticcheck@v0.8.2"
fuzztime="${FUZZTIME:-3s}"
. scripts/modules.sh
# Every module of the workspace (go.work): the library modules, and
# integration/, example/, openapi/ (which checks the example's OpenAPI
# document against its end-to-end, hostile, write and generated-client
# suites) and the modproxy tool.
mapfile -t modules < <(module_dirs)

step() { printf '\n== %s\n' "$*"; }

# test_only matches the modules only tests, the example or the checks use:
# none may reach a user's build list.
test_only='ferretdb|sqlite|modernc\.org|go-chi|gorilla|libopenapi|kin-openapi|oapi-codegen|jsonschema|github\.com/mongohttp/mongohttp/(integration|example|openapi|scripts)'

step "root module requires only the driver"
# Outside the workspace: its build list is then the root module's alone.
direct=$(GOWORK=off go list -m -f '{{if and (not .Main) (not .Indirect)}}{{.Path}}{{end}}' all)
if [ "$direct" != "go.mongodb.org/mongo-driver/v2" ]; then
	echo "the root module must require only the driver; it requires: $direct" >&2
	exit 1
fi
if GOWORK=off go list -m all | grep -i -E "$test_only"; then
	echo "test servers and routers belong in nested modules, not the root build list" >&2
	exit 1
fi

step "library modules install from a module proxy as tagged"
# Publishes the library modules of the checkout at the release version into
# a file-based module proxy, then does what a user does: go get them into an
# empty module that asks for Go 1.25, build a program importing every
# public package (as go list finds them in what was downloaded), and check
# its build list: no module that only tests and examples need, and no
# module that needs a newer Go.
(
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	local_proxy "$tmp" >"$tmp/published"
	mapfile -t published <"$tmp/published"
	for m in $(library_module_dirs); do
		v=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$m/go.mod")
		case "$v" in
		1.2[0-5] | 1.2[0-5].*) ;;
		*)
			echo "$m/go.mod asks for go $v: library modules ask for go 1.25 at most" >&2
			exit 1
			;;
		esac
	done
	mkdir "$tmp/user"
	cd "$tmp/user"
	printf 'module example.com/user\n\ngo 1.25.0\n' >go.mod
	GOTOOLCHAIN=local go get "${published[@]}"
	go list -f '{{if and .GoFiles (ne .Name "main")}}{{.ImportPath}}{{end}}' \
		$(printf '%s/... ' "${published[@]%@*}") >"$tmp/packages"
	mapfile -t pkgs < <(grep -v -E '/internal(/|$)' "$tmp/packages")
	if [ "${#pkgs[@]}" -eq 0 ]; then
		echo "go list found no public package in ${published[*]}" >&2
		exit 1
	fi
	{
		printf 'package main\n\nimport (\n'
		printf '\t_ "%s"\n' "${pkgs[@]}"
		printf ')\n\nfunc main() {}\n'
	} >main.go
	echo "importing: ${pkgs[*]}"
	GOTOOLCHAIN=local go build -o /dev/null .
	if ! grep -q -x 'go 1\.25\(\.[0-9]*\)\?' go.mod; then
		echo "installing the library raised the user's go line:" >&2
		grep '^go ' go.mod >&2
		go list -m -f '{{if .GoVersion}}{{.Path}} {{.Version}} needs go {{.GoVersion}}{{end}}' all | grep -v -E 'needs go 1\.([0-9]|1[0-9]|2[0-5])(\.|$)' >&2
		exit 1
	fi
	if go list -m all | grep -i -E "$test_only"; then
		echo "a user's build list holds the modules above, which only tests and examples need" >&2
		exit 1
	fi
)

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

# The example's /live page is tested in headless Chromium (Debian's package),
# installed only where that test exists and no chromium is on the PATH.
if ! command -v chromium >/dev/null && grep -qs '^func TestLivePage(' example/*_test.go; then
	step "installing chromium for the example's /live page test"
	as_root=()
	if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
		as_root=(sudo)
	fi
	"${as_root[@]}" apt-get update
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

for m in "${modules[@]}"; do
	step "module $m: go test -race"
	# Only the packages that have tests: go test would otherwise build the
	# others too, with the race detector (the integration module's FerretDB
	# program among them), for nothing vet has not checked.
	(
		cd "$m"
		pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
		# A package's tests may take longer than go test's default 10
		# minutes under the race detector on a loaded 2-core machine (the
		# example's 100,000-line bulk insert among them): fail on a hang at
		# 25, not on a slow machine at 10.
		go test -race -count=1 -timeout 25m $pkgs
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
