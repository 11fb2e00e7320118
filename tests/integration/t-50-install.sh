#!/bin/bash
# make install DESTDIR=... PREFIX=/usr installs exactly the binary, the five
# man pages, the examples under share/doc/smtpspool and the bash completion (the
# list is compared file by file), the installed binary runs; make uninstall
# with the same variables leaves no file behind, only the shared directories.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool make

DEST=$TEST_TMP/dest
# The build is up to date (make integration depends on it): install only
# copies. BUILD points at the binary run.sh was given.
build=$(dirname "$SMTPSPOOL_BIN")
make_args=(-C "$REPO_ROOT" --no-print-directory DESTDIR="$DEST" PREFIX=/usr)
if [[ "$SMTPSPOOL_BIN" != "$REPO_ROOT/build/smtpspool" ]]; then
    # run.sh runs a copy; install the binary make would build.
    build=$REPO_ROOT/build
fi
[[ -x "$build/smtpspool" ]] || fail "no $build/smtpspool: run make first"

step "make install"
make "${make_args[@]}" -q all || fail "the build is not up to date (make all first)"
make "${make_args[@]}" install >"$TEST_TMP/install.log" 2>&1 || fail "make install: $(cat "$TEST_TMP/install.log")"
found=$(cd "$DEST" && find . \( -type f -o -type l \) | sort)
expected=$(
    {
        echo ./usr/sbin/smtpspool
        echo ./usr/share/man/man8/smtpspool.8
        echo ./usr/share/man/man8/smtpspool-runq.8
        echo ./usr/share/man/man8/smtpspool-sendmail.8
        echo ./usr/share/man/man5/smtpspool.conf.5
        echo ./usr/share/man/man5/smtpspool-spool.5
        echo ./usr/share/bash-completion/completions/smtpspool
        (cd "$REPO_ROOT/examples" && git ls-files . 2>/dev/null || find . -type f) |
            sed -e 's#^\./##' -e 's#^#./usr/share/doc/smtpspool/examples/#'
    } | sort
)
assert_eq "$expected" "$found" "installed files"
assert_eq 755 "$(stat -c %a "$DEST/usr/sbin/smtpspool")" "mode of the binary"
for page in man8/smtpspool.8 man8/smtpspool-runq.8 man8/smtpspool-sendmail.8 man5/smtpspool.conf.5 man5/smtpspool-spool.5; do
    assert_eq 644 "$(stat -c %a "$DEST/usr/share/man/$page")" "mode of $page"
done
assert_eq 755 "$(stat -c %a "$DEST/usr/share/doc/smtpspool/examples/tcpserver/run")" "mode of the tcpserver run script"
cmp "$REPO_ROOT/completion/smtpspool" "$DEST/usr/share/bash-completion/completions/smtpspool" ||
    fail "the installed completion differs"
out=$("$DEST/usr/sbin/smtpspool" --version)
assert_match "$out" '^smtpspool [0-9]' "the installed binary's --version"

step "make uninstall"
make "${make_args[@]}" uninstall >"$TEST_TMP/uninstall.log" 2>&1 || fail "make uninstall: $(cat "$TEST_TMP/uninstall.log")"
left=$(cd "$DEST" && find . \( -type f -o -type l \) | sort)
assert_eq "" "$left" "files left after make uninstall"
dirs=$(cd "$DEST" && find . -mindepth 1 -type d | sort)
assert_eq "$(printf '%s\n' ./usr ./usr/sbin ./usr/share ./usr/share/bash-completion \
    ./usr/share/bash-completion/completions ./usr/share/doc ./usr/share/man ./usr/share/man/man5 \
    ./usr/share/man/man8)" "$dirs" "directories left (the shared ones)"
