# Conveniences; the README's two commands work without make.
.PHONY: run test deb board-test bench soak format console-screenshots

run:
	bash Deploy/quickstart.sh

test:
	bash .ci/test.sh

# telemetry-gateway_<version>-1_<arch>.deb in this folder: release binaries with the Swift
# runtime linked in, lintian-clean.
deb:
	EXTRA_PACKAGES="$(DEB_PACKAGES)" bash .ci/deps.sh
	bash Deploy/build-deb.sh --lintian

# The package on a Debian 12 virtual machine with systemd (Tests/Board/run.sh).
board-test:
	EXTRA_PACKAGES="$(DEB_PACKAGES)" bash .ci/deps.sh
	bash Tests/Board/run.sh

bench:
	bash Benchmarks/suite.sh

soak:
	bash Benchmarks/soak.sh

# The README's console screenshots, from the browser test (headless Chromium).
console-screenshots:
	EXTRA_PACKAGES="chromium" bash .ci/deps.sh
	swift build --build-tests
	TG_CONSOLE_SCREENSHOTS=$(CURDIR)/Tests/Screenshots swift test --skip-build --filter ConsoleTests

format:
	swift format -i -r Sources Tests Package.swift

DEB_PACKAGES = dpkg-dev fakeroot lintian libcurl4-openssl-dev
