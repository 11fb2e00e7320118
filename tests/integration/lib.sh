# lib.sh: helpers for the integration tests (tests/integration/t-*.sh), run by
# `make integration` through tests/e2e/run.sh. On top of the end-to-end
# helpers (tests/e2e/lib.sh: outcomes, assertions, start_bg, free_port, ...):
#  - need_package: the Debian package of the superserver, installed when
#    missing (as root), or unpacked when it conflicts with one installed;
#  - an unprivileged user ($RUNAS: nobody when run as root) that runs
#    smtpspool, with a copy of the binary it can execute ($BIN) and a spool it
#    owns ($SPOOL);
#  - the configuration file the examples name (/etc/smtpspool.conf), made from
#    examples/smtpspool.conf with the spool and the relay network replaced.
# shellcheck source=tests/e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../e2e" && pwd)/lib.sh"

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH="$IT_DIR:$PYTHONPATH"

is_root()
{
    [[ $(id -u) -eq 0 ]]
}

# The file system root a package's files are under: / when it is installed,
# the directory it was unpacked into otherwise (see need_package).
PKG_ROOT=

_apt_updated=
apt_get()
{
    DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 "$@"
}

# need_package PACKAGE: makes PACKAGE's files available under $PKG_ROOT.
# Installed: PKG_ROOT=. Missing: as root, apt-get install (after one
# apt-get update if apt does not know the package); when installing it would
# remove another package (openbsd-inetd and xinetd conflict: both provide
# inet-superserver), the .deb is downloaded and unpacked under $TEST_TMP
# instead and only its dependencies are installed. Not root: skip_test.
need_package()
{
    local pkg=$1
    PKG_ROOT=
    if dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        return 0
    fi
    is_root || skip_test "the Debian package $pkg is not installed (as root, this test installs it)"
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
        apt_get update || fail "apt-get update failed"
    fi
    local plan
    plan=$(apt-get install -s --no-install-recommends "$pkg" 2>&1) || fail "apt-get cannot install $pkg:
$plan"
    if ! grep -q '^Remv ' <<<"$plan"; then
        echo "installing the Debian package $pkg"
        apt_get install -y --no-install-recommends "$pkg" >/dev/null || fail "apt-get install $pkg failed"
        return 0
    fi
    echo "installing $pkg would remove $(grep '^Remv ' <<<"$plan" | cut -d' ' -f2 | paste -sd' '):" \
        "unpacking it under $TEST_TMP instead"
    local dir=$TEST_TMP/deb-$pkg deps
    mkdir -p "$dir"
    (cd "$dir" && apt-get -qq -o APT::Sandbox::User=root download "$pkg") || fail "apt-get download $pkg failed"
    # The dependencies (the first of each alternative, without versions).
    deps=$(dpkg-deb -f "$dir"/*.deb Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep .)
    # shellcheck disable=SC2086 # one package name per word
    apt_get install -y --no-install-recommends $deps >/dev/null || fail "apt-get install $deps failed"
    dpkg-deb -x "$dir"/*.deb "$dir/root" || fail "dpkg-deb -x failed"
    PKG_ROOT=$dir/root
}

# need_root WHY: skip the test unless run as root.
need_root()
{
    is_root || skip_test "needs root: $*"
}

# The user smtpspool runs as, its copy of the binary, its spool.
if is_root; then
    RUNAS=nobody
else
    RUNAS=$(id -un)
fi
chmod 755 "$TEST_TMP"
mkdir -p "$TEST_TMP/bin"
cp "$SMTPSPOOL_BIN" "$TEST_TMP/bin/smtpspool"
chmod 755 "$TEST_TMP/bin/smtpspool"
BIN=$TEST_TMP/bin/smtpspool

# make_spool DIR: an empty spool owned by $RUNAS, as README's install line.
make_spool()
{
    install -d -m 750 "$1"
    is_root && chown "$RUNAS:" "$1"
    return 0
}

# make_config FILE SPOOL RELAY: examples/smtpspool.conf with SPOOL for the
# spool and RELAY (a CIDR network) as the only relay network besides ::1.
make_config()
{
    local file=$1 spool=$2 relay=$3 example=$REPO_ROOT/examples/smtpspool.conf
    sed -e "s#^spool = /var/spool/smtpspool\$#spool = $spool#" \
        -e "s#^relay-client = 127.0.0.0/8\$#relay-client = $relay#" "$example" >"$file"
    assert_line "$file" "spool = $spool"
    assert_line "$file" "relay-client = $relay"
    chmod 644 "$file"
}

# substitute FILE SED-EXPR...: FILE with the expressions applied; fails when
# one of them changed nothing (the example no longer has what the test
# replaces).
substitute()
{
    local file=$1 e out
    shift
    out=$(cat "$file")
    for e in "$@"; do
        local next
        next=$(sed -e "$e" <<<"$out")
        [[ "$next" != "$out" ]] || fail "$file: the substitution $e changed nothing"
        out=$next
    done
    printf '%s\n' "$out"
}

# check_owner FILE: FILE belongs to $RUNAS (smtpspool ran as that user).
check_owner()
{
    assert_eq "$RUNAS" "$(stat -c %U "$1")" "owner of $1"
}
