# Conveniences; the README's two commands work without make.
.PHONY: run test bench soak format

run:
	bash Deploy/quickstart.sh

test:
	bash .ci/test.sh

bench:
	bash Benchmarks/suite.sh

soak:
	bash Benchmarks/soak.sh

format:
	swift format -i -r Sources Tests Package.swift
