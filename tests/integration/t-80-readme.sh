#!/bin/bash
# README's Deployment section shows the example files' own lines: every line
# of its indented blocks before "### Install" is a line of a file under
# examples/ (tabs and all), apart from the shell commands that install them.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

section=$(awk '/^## Deployment$/ { on = 1; next } /^### Install/ { on = 0 } on' "$REPO_ROOT/README.md")
[[ -n "$section" ]] || fail "no Deployment section in README.md"
mapfile -t lines < <(sed -n 's/^    //p' <<<"$section" | grep -v '^\(useradd\|install\|ln\) ')
((${#lines[@]} > 20)) || fail "too few example lines in README's Deployment section: ${#lines[@]}"
all=$(find "$REPO_ROOT/examples" -type f -exec cat {} +)
for line in "${lines[@]}"; do
    [[ -z "$line" ]] && continue
    grep -qxF -- "$line" <<<"$all" || fail "README's Deployment line is in no example file: [$line]"
done
echo "${#lines[@]} lines, each found in examples/"
