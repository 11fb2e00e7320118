#!/bin/bash
# completion/smtpspool against the binary's own help: every command listed
# by `smtpspool --help` is completed after `smtpspool`, and for each command
# every option that `smtpspool COMMAND --help` lists is completed after
# `smtpspool COMMAND -`, by the completion function run in bash, and no
# option the command does not have. Also: --log values, --rfc821= values.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
COMPLETION=$REPO_ROOT/completion/smtpspool

# complete WORD...: what the completion offers for the last WORD.
complete_words()
{
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
        _smtpspool; printf "%s\n" "${COMPREPLY[@]}" | sort -u | grep .' _ "$COMPLETION" "$@" || true
}

# The options of a help text: the first word(s) of its option lines.
options_of()
{
    sed -n -e 's/^  -h \[ --help \].*/-h\n--help/p' -e 's/^  \(--[a-z0-9-]*\).*/\1/p' | sort -u
}

step "commands"
commands=$("$SMTPSPOOL_BIN" --help | sed -n 's/^Commands: \(.*\);$/\1/p' | sed 's/ (default)//' | tr -d ',')
[[ -n "$commands" ]] || fail "no 'Commands:' line in smtpspool --help"
assert_eq "$(tr ' ' '\n' <<<"$commands" | sort)" "$(complete_words smtpspool '')" "commands completed"

step "options"
for cmd in $commands; do
    expected=$("$SMTPSPOOL_BIN" "$cmd" --help | options_of)
    [[ -n "$expected" ]] || fail "no options in smtpspool $cmd --help"
    assert_eq "$expected" "$(complete_words smtpspool "$cmd" -)" "options completed for smtpspool $cmd"
    echo "$cmd: $(echo $expected)"
done
# serve is also the command when none is given.
assert_eq "$("$SMTPSPOOL_BIN" --help | options_of)" "$(complete_words smtpspool -)" "options completed for smtpspool"

step "values"
assert_eq "$(printf '%s\n' none stderr syslog)" "$(complete_words smtpspool --log '')" "values of --log"
assert_eq "$(printf '%s\n' no yes)" "$(complete_words smtpspool --rfc821=)" "values of --rfc821="
if command -v shellcheck >/dev/null 2>&1; then
    shellcheck -s bash "$COMPLETION" || fail "shellcheck completion/smtpspool"
else
    skip_part shellcheck "shellcheck is not installed"
fi
