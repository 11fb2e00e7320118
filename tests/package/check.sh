#!/bin/bash
# make package-check: builds the Debian package from a copy of the working
# tree (dpkg-buildpackage -us -uc -b), runs lintian (any E: fails; W: and
# the rest are shown), installs it with dpkg -i, checks what it did, then
# purges it:
#  - the smtpspool system user and group (uid below 1000, nologin shell);
#  - /var/spool/smtpspool owned by smtpspool:smtpspool, mode 750;
#  - smtpspool --version, the five man pages (man -w), the bash completion,
#    /etc/smtpspool.conf as a conffile, check-config accepts it;
#  - the systemd units installed but neither enabled nor started, and
#    accepted by systemd-analyze verify (man pages and user now real);
#  - a session piped in as user smtpspool is spooled there;
#  - after dpkg --purge: no file of the package, no spool; the user stays
#    (Debian practice), and is removed here if this check created it.
# Needs root and dpkg-dev, debhelper, lintian and the build dependencies,
# which it installs when missing. Leaves the machine as it found it.
set -Eeuo pipefail
trap 'echo "error: $BASH_SOURCE:$LINENO: \`$BASH_COMMAND\` exited with status $?" >&2' ERR

REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
t_start=$SECONDS
fail()
{
    echo "FAIL: $*" >&2
    exit 1
}
step()
{
    echo "--- $* ($((SECONDS - t_start))s)"
}
[[ $(id -u) -eq 0 ]] || {
    echo "package-check needs root (dpkg -i, a system user); skipped" >&2
    exit 1
}
if dpkg-query -W -f='${Status}\n' smtpspool 2>/dev/null | grep -q 'installed$'; then
    fail "a smtpspool package is installed already; package-check would replace and purge it"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smtpspool-package.XXXXXX")
installed=
user_existed=no
getent passwd smtpspool >/dev/null && user_existed=yes
cleanup()
{
    local status=$?
    set +e
    if [[ -n "$installed" ]]; then
        dpkg --purge smtpspool >/dev/null 2>&1
    fi
    if [[ $user_existed == no ]] && getent passwd smtpspool >/dev/null; then
        deluser --quiet --system smtpspool >/dev/null 2>&1
        getent group smtpspool >/dev/null && delgroup --quiet --system smtpspool >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

step "build dependencies"
need=(dpkg-dev debhelper lintian adduser)
# The Build-Depends of debian/control (names only).
mapfile -t -O "${#need[@]}" need < <(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$REPO_ROOT/debian/control" |
    sed -e 's/^Build-Depends://' -e '/^[A-Z]/d' | tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' | grep . |
    grep -v '^debhelper-compat$')
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get -qq update && apt-get -qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
        fail "apt-get install ${missing[*]}"
fi

step "dpkg-buildpackage -us -uc -b (in a copy of the tree)"
version=$(dpkg-parsechangelog -l "$REPO_ROOT/debian/changelog" -S Version)
SRC=$WORK/smtpspool-$version
mkdir -p "$SRC"
(cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$SRC" 2>/dev/null) ||
    (cd "$REPO_ROOT" && tar --exclude=./build --exclude=./build-asan --exclude=./build-fuzz --exclude=./.git -cf - . | tar -C "$SRC" -xf -)
b0=$SECONDS
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"
    fail "dpkg-buildpackage failed"
}
echo "built in $((SECONDS - b0))s: $(cd "$WORK" && ls ./*.deb | tr '\n' ' ')"
DEB=$WORK/smtpspool_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[[ -f "$DEB" ]] || fail "no $DEB"

step "lintian"
lintian --pedantic --info "$WORK"/smtpspool_"${version}"_*.changes >"$WORK/lintian.log" 2>&1 || true
grep -E '^[EWIPXO]: ' "$WORK/lintian.log" || echo "(no tags)"
if grep -q '^E: ' "$WORK/lintian.log"; then
    fail "lintian reports errors"
fi

step "dpkg -i"
installed=yes
dpkg -i "$DEB" >"$WORK/install.log" 2>&1 || {
    cat "$WORK/install.log"
    fail "dpkg -i failed"
}
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd smtpspool) || fail "no smtpspool user"
((uid < 1000)) || fail "smtpspool: uid $uid is not a system uid"
[[ "$(getent group smtpspool | cut -d: -f3)" == "$gid" ]] || fail "smtpspool's group is not its own group smtpspool"
[[ $shell == /usr/sbin/nologin ]] || fail "smtpspool's shell: $shell"
echo "user smtpspool: uid $uid gid $gid home $home shell $shell"
owner=$(stat -c '%U:%G %a' /var/spool/smtpspool)
[[ $owner == "smtpspool:smtpspool 750" ]] || fail "/var/spool/smtpspool: expected smtpspool:smtpspool 750, found $owner"
echo "/var/spool/smtpspool: $owner"
out=$(/usr/sbin/smtpspool --version)
[[ $out == "smtpspool $version" || $out == "smtpspool $version (git "*")" ]] ||
    fail "smtpspool --version: expected [smtpspool $version] (and the git revision), found [$out]"
echo "smtpspool --version: $out"
for page in "8 smtpspool" "8 smtpspool-runq" "8 smtpspool-sendmail" "5 smtpspool.conf" "5 smtpspool-spool"; do
    # shellcheck disable=SC2086 # section and name
    man -w $page >/dev/null || fail "man -w $page: the man page is not found"
done
[[ -f /usr/share/bash-completion/completions/smtpspool ]] || fail "no bash completion"
grep -qx /etc/smtpspool.conf /var/lib/dpkg/info/smtpspool.conffiles || fail "/etc/smtpspool.conf is not a conffile"
/usr/sbin/smtpspool check-config --config /etc/smtpspool.conf >/dev/null || fail "check-config rejects /etc/smtpspool.conf"

step "systemd units: installed, disabled, valid"
for u in smtpspool.socket smtpspool@.service smtpspool-runq.service smtpspool-runq.timer; do
    [[ -f /lib/systemd/system/$u ]] || fail "no /lib/systemd/system/$u"
done
enabled=$(find /etc/systemd/system -name 'smtpspool*' 2>/dev/null || true)
[[ -z "$enabled" ]] || fail "units enabled: $enabled"
out=$(cd /lib/systemd/system && systemd-analyze verify smtpspool.socket smtpspool@.service \
    smtpspool-runq.service smtpspool-runq.timer 2>&1) || fail "systemd-analyze verify: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify: $out"

step "a session as user smtpspool"
out=$(printf 'HELO pkg.test.example\nMAIL FROM:<a@pkg.test.example>\nRCPT TO:<postmaster@localhost>\nDATA\nSubject: package\n\nhello\n.\nQUIT\n' |
    setpriv --reuid=smtpspool --regid=smtpspool --init-groups /usr/sbin/smtpspool --config /etc/smtpspool.conf --log none)
grep -q '^250 .*queued as' <<<"$out" || fail "session: $out"
env=$(find /var/spool/smtpspool/queue -name envelope.json | head -1)
[[ -n "$env" && $(stat -c %U "$env") == smtpspool ]] || fail "no envelope owned by smtpspool in /var/spool/smtpspool/queue"
/usr/sbin/smtpspool mailq --spool /var/spool/smtpspool | tail -1

step "dpkg --purge"
dpkg --purge smtpspool >"$WORK/purge.log" 2>&1 || {
    cat "$WORK/purge.log"
    fail "dpkg --purge failed"
}
installed=
for f in /usr/sbin/smtpspool /etc/smtpspool.conf /var/spool/smtpspool /lib/systemd/system/smtpspool.socket \
    /usr/share/doc/smtpspool; do
    [[ ! -e $f ]] || fail "$f is left after purge"
done
getent passwd smtpspool >/dev/null && echo "the smtpspool user stays after purge (Debian practice)"
echo "package-check passed in $((SECONDS - t_start))s"
