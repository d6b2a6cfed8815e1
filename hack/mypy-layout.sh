#!/bin/sh
# mypy sees the import names peertap.sidecar / peertap.operator through symlinks,
# since the folders sidecar/ and operator/ are mapped to them only at install time.
set -eu
mkdir -p build/mypy-layout/peertap
ln -sfn ../../../sidecar build/mypy-layout/peertap/sidecar
ln -sfn ../../../operator build/mypy-layout/peertap/operator
