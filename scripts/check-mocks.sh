#!/usr/bin/env bash
# check-mocks.sh regenerates the mocks in mocks/ (go generate, mockery at the
# version pinned in clientmanager/callsite.go) and fails when the result
# differs from what is committed: a changed interface must ship with its
# regenerated mocks.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# mockery's own config and deprecation lines are shown only when it fails.
if ! out=$(go generate -run mockery ./clientmanager/... 2>&1); then
	echo "$out" >&2
	exit 1
fi

status=0
if ! git diff --exit-code -- mocks/; then
	echo "check-mocks: mocks/ differs from the generated mocks above" >&2
	status=1
fi
untracked=$(git ls-files --others --exclude-standard -- mocks/)
if [ -n "$untracked" ]; then
	printf 'check-mocks: files in mocks/ not in git:\n%s\n' "$untracked" >&2
	status=1
fi
if [ "$status" -ne 0 ]; then
	echo "check-mocks: run 'go generate ./clientmanager/' and commit mocks/" >&2
	exit "$status"
fi
echo "check-mocks: mocks/ is up to date"
