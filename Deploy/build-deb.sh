#!/usr/bin/env bash
# Builds the Debian package telemetry-gateway_<version>_<arch>.deb (what `make deb` runs).
#
#   bash Deploy/build-deb.sh [--bin DIR] [--revision N] [--out DIR] [--lintian]
#
# Without --bin it builds gatewayd and gwctl in release mode with the Swift standard library
# linked in (--static-swift-stdlib): a board needs no Swift toolchain or runtime, only the
# Debian libraries named in Depends (computed from the binaries by dpkg-shlibdeps).
# --bin DIR     package the gatewayd and gwctl found in DIR instead (the test suite packages its
#               debug build this way; such a package needs the toolchain's runtime on the host)
# --revision N  the Debian revision: version is <gatewayd's version>-N (default 1); the board
#               test builds two revisions to upgrade from one to the other
# --out DIR     where the .deb goes (default: the current directory)
# --lintian     run lintian on the result and fail on any error or warning
# --test-package  accept binaries that load the toolchain's Swift runtime (a debug build) and
#               compress fast: for the test suite's throwaway roots only, never for a board
# Prints the path of the package on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
bin=""
revision=1
out=$PWD
lint=0
test_package=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$(cd "${2:?--bin needs a directory}" && pwd); shift ;;
        --revision) revision=${2:?--revision needs a number}; shift ;;
        --out) mkdir -p "${2:?--out needs a directory}"; out=$(cd "$2" && pwd); shift ;;
        --lintian) lint=1 ;;
        --test-package) test_package=1 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "build-deb: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
say() { echo "build-deb: $*" >&2; }

for tool in dpkg-deb dpkg-shlibdeps fakeroot; do
    command -v "$tool" >/dev/null || { say "needs $tool: apt-get install dpkg-dev fakeroot"; exit 69; }
done

version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' "$top/Sources/Version/GatewayVersion.swift")
[ -n "$version" ] || { say "cannot read the version from Sources/Version/GatewayVersion.swift"; exit 65; }
arch=$(dpkg --print-architecture)
package=telemetry-gateway
full_version=$version-$revision

if [ -z "$bin" ]; then
    say "building gatewayd and gwctl (release, static Swift standard library)"
    for product in gatewayd gwctl; do
        (cd "$top" && swift build -c release --static-swift-stdlib --scratch-path .build-deb --product $product) >&2
    done
    bin=$top/.build-deb/release
fi
swift_runtime=0
for tool in gatewayd gwctl; do
    [ -x "$bin/$tool" ] || { say "$bin/$tool not found"; exit 66; }
    if ldd "$bin/$tool" | grep -q 'libswiftCore\.so'; then swift_runtime=1; fi
done
if [ "$swift_runtime" -eq 1 ] && [ "$test_package" -eq 0 ]; then
    say "$bin/gatewayd loads the Swift runtime from the toolchain, which a board does not have:" \
        "build with --static-swift-stdlib (leave out --bin), or pass --test-package for a test root"
    exit 65
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/tree
doc=$tree/usr/share/doc/$package

install -d -m 0755 "$tree/DEBIAN" "$tree/usr/bin" "$tree/usr/share/$package" "$doc/examples" \
    "$tree/usr/share/man/man1" "$tree/usr/share/man/man8" "$tree/lib/systemd/system/mosquitto.service.d" \
    "$tree/etc/telemetry-gateway" "$tree/etc/mosquitto/conf.d" "$tree/usr/share/lintian/overrides"
for tool in gatewayd gwctl; do
    install -m 0755 "$bin/$tool" "$tree/usr/bin/$tool"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$tree/usr/bin/$tool"
done
install -m 0644 "$here/systemd/gatewayd.service" "$tree/lib/systemd/system/gatewayd.service"
install -m 0644 "$here/systemd/mosquitto-hardening.conf" \
    "$tree/lib/systemd/system/mosquitto.service.d/telemetry-gateway.conf"
install -m 0644 "$here/gatewayd.board.json" "$tree/etc/telemetry-gateway/gatewayd.json"
install -m 0644 "$here/mosquitto/telemetry-gateway.conf" "$tree/etc/mosquitto/conf.d/telemetry-gateway.conf"
install -m 0644 "$here/mosquitto/telemetry-gateway.acl" "$tree/usr/share/$package/telemetry-gateway.acl"
install -m 0644 "$here/gatewayd.json" "$doc/examples/gatewayd.json"
install -m 0644 "$here/README.md" "$doc/README.Deploy.md"
install -m 0644 "$here/debian/copyright" "$doc/copyright"
gzip -9n <"$here/debian/changelog" >"$doc/changelog.Debian.gz"
gzip -9n <"$here/debian/gatewayd.8" >"$tree/usr/share/man/man8/gatewayd.8.gz"
gzip -9n <"$here/debian/gwctl.1" >"$tree/usr/share/man/man1/gwctl.1.gz"
install -m 0644 "$here/debian/lintian-overrides" "$tree/usr/share/lintian/overrides/$package"
chmod 0644 "$doc/changelog.Debian.gz" "$tree/usr/share/man/man8/gatewayd.8.gz" "$tree/usr/share/man/man1/gwctl.1.gz"
for script in postinst prerm postrm; do
    install -m 0755 "$here/debian/$script" "$tree/DEBIAN/$script"
done
install -m 0644 "$here/debian/conffiles" "$tree/DEBIAN/conffiles"

# The changelog's newest entry must name this version (lintian and apt changelog read it).
sed -n '1s/^telemetry-gateway (\([^)]*\)).*/\1/p' "$here/debian/changelog" | grep -qx "$version-[0-9]*" ||
    { say "Deploy/debian/changelog's first entry is not for $version"; exit 65; }

# Depends: the shared libraries the binaries link, as dpkg-shlibdeps maps them to packages
# (libc6, libssl3, libmosquitto1, libsqlite3-0, libcurl4 for gwctl's HTTP client, libstdc++6,
# libgcc-s1), then what the maintainer scripts run.
mkdir -p "$work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$work/debian/control"
# A test package's Swift libraries belong to no Debian package: left out of Depends.
shlibdeps_opts=()
[ "$swift_runtime" -eq 0 ] || shlibdeps_opts=(--ignore-missing-info)
shlibs=$(cd "$work" && dpkg-shlibdeps "${shlibdeps_opts[@]}" -O "$tree/usr/bin/gatewayd" "$tree/usr/bin/gwctl" |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { say "dpkg-shlibdeps found no libraries"; exit 70; }
installed_kb=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
sed -e "s/@VERSION@/$full_version/" -e "s/@ARCH@/$arch/" -e "s/@SHLIBS@/$shlibs/" \
    -e "s/@INSTALLED_SIZE@/$installed_kb/" "$here/debian/control.in" >"$tree/DEBIAN/control"
(cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) \
    >"$tree/DEBIAN/md5sums"
chmod 0644 "$tree/DEBIAN/control" "$tree/DEBIAN/md5sums"

deb=$out/${package}_${full_version}_${arch}.deb
compression=(-Zxz)
[ "$test_package" -eq 0 ] || compression=(-Zgzip -z1)
fakeroot dpkg-deb "${compression[@]}" --build "$tree" "$deb" >&2
say "$(du -h "$deb" | cut -f1) package, $((installed_kb / 1024)) MiB installed: $deb"
if [ "$lint" -eq 1 ]; then
    command -v lintian >/dev/null || { say "needs lintian: apt-get install lintian"; exit 69; }
    lintian --fail-on error,warning --tag-display-limit 0 "$deb" >&2
    say "lintian: no errors or warnings"
fi
echo "$deb"
