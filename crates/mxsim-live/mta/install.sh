#!/usr/bin/env bash
# Install Postfix, Exim 4 and OpenSMTPD side by side into private roots for
# mxsim live mode, WITHOUT installing any of them on the host.
#
#   bash install.sh                  # all three
#   bash install.sh postfix exim     # a subset (postfix | exim | opensmtpd)
#
# Environment:
#   MXSIM_LIVE_ROOT   base directory (default /opt/mxsim-live). Each MTA goes to
#                     $MXSIM_LIVE_ROOT/<mta>/root, with its package version in
#                     $MXSIM_LIVE_ROOT/<mta>/version.
#   MXSIM_LIVE_FORCE  set to 1 to re-extract even if the version is unchanged.
#
# What it does (Debian 12, root or sudo; idempotent):
#   1. makes sure /usr/sbin/policy-rc.d exits 101 (creates it if absent, keeps
#      it if present) so no package ever starts a daemon on the host;
#   2. apt-get installs (--no-install-recommends) the runtime dependencies of the
#      MTA packages, computed from `apt-cache depends`, minus the MTA packages
#      themselves, every provider of mail-transport-agent and the packages only
#      their maintainer scripts use; plus iproute2 and nftables;
#   3. creates the system users/groups the MTAs need, as their postinst would;
#   4. `apt-get download`s the MTA .debs and `dpkg-deb -x`es them into the
#      private root, then applies the permission fix-ups of the postinst there.
# Nothing of the MTAs lands in the host's /usr, /etc or /var: the host keeps no
# installed or running MTA. See enter.md for how the roots are used.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    exec sudo --preserve-env=MXSIM_LIVE_ROOT,MXSIM_LIVE_FORCE bash "$0" "$@"
fi

BASE=${MXSIM_LIVE_ROOT:-/opt/mxsim-live}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'mxsim-live install: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pkgs_of() {
    case $1 in
        postfix) echo postfix ;;
        exim) echo exim4-daemon-light exim4-base exim4-config ;;
        opensmtpd) echo opensmtpd ;;
        *) die "unknown MTA '$1' (expected postfix, exim or opensmtpd)" ;;
    esac
}

MTAS=("$@")
[[ ${#MTAS[@]} -gt 0 ]] || MTAS=(postfix exim opensmtpd)
ALL_PKGS=()
for m in "${MTAS[@]}"; do
    # shellcheck disable=SC2207
    ALL_PKGS+=($(pkgs_of "$m"))
done

# --- 1. policy-rc.d ----------------------------------------------------------
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    log "creating /usr/sbin/policy-rc.d (exit 101)"
    printf '#!/bin/sh\n# created by mxsim-live install.sh: never start services\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
else
    set +e
    /usr/sbin/policy-rc.d mxsim-probe start >/dev/null 2>&1
    rc=$?
    set -e
    [[ $rc -eq 101 ]] || log "warning: existing /usr/sbin/policy-rc.d exits $rc, not 101 (kept as is)"
fi

# --- 2. runtime dependencies -------------------------------------------------
if ! apt-cache show postfix >/dev/null 2>&1 || [[ -z $(apt-cache policy postfix | awk '/Candidate:/ && $2 != "(none)" {print $2}') ]]; then
    log "apt-get update"
    apt-get update -qq
fi

# Never install these on the host: the MTA packages and all mail-transport-agent
# providers (they conflict), plus packages that only the MTAs' maintainer
# scripts, cron jobs or init scripts use.
declare -A EXCLUDE=()
for p in postfix opensmtpd exim4 exim4-base exim4-config exim4-daemon-light exim4-daemon-heavy \
         cron anacron bcron systemd-cron systemd-sysv cron-daemon \
         ssl-cert cpio ed lsb-base init-system-helpers; do
    EXCLUDE[$p]=1
done
while read -r p _; do
    [[ -n $p ]] && EXCLUDE[$p]=1
done < <(apt-cache showpkg mail-transport-agent | sed -n '/^Reverse Provides:/,$p' | tail -n +2)

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
has_candidate() {   # no `| grep -q` here: with pipefail, SIGPIPE would make it fail
    local c
    c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n $c && $c != "(none)" ]]
}

# Parse `apt-cache depends` of one package; print one chosen package per
# Depends/PreDepends group (OR groups: an installed alternative wins, else the
# first non-excluded one; virtual packages expand to their providers).
# A group whose every alternative is excluded is dropped.
deps_of() {
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$1" | awk '
        /^ [ |](Pre)?Depends: / {
            alt = ($0 ~ /^ \|/); name = $2
            cur = cur (cur == "" ? "" : " ") name
            if (!alt) { grp[++n] = cur; cur = "" }
            next }
        /^    / { # providers of the previous virtual package
            if (n > 0 && cur == "" ) grp[n] = grp[n] " " $1; else cur = cur " " $1
            next }
        END { for (i = 1; i <= n; i++) print grp[i] }'
}

DEPS=()
declare -A SEEN=()
for pkg in "${ALL_PKGS[@]}"; do
    while read -r group; do
        choice=""
        for a in $group; do [[ $a == \<* ]] && continue; installed "$a" && { choice=$a; break; }; done
        if [[ -z $choice ]]; then
            for a in $group; do
                [[ $a == \<* ]] && continue
                [[ -n ${EXCLUDE[$a]:-} ]] && continue
                has_candidate "$a" && { choice=$a; break; }
            done
        fi
        if [[ -z $choice ]]; then
            all_excluded=1
            for a in $group; do [[ $a == \<* || -n ${EXCLUDE[$a]:-} ]] || all_excluded=0; done
            [[ $all_excluded == 1 ]] || die "$pkg: cannot satisfy dependency group: $group"
            continue
        fi
        [[ -n ${EXCLUDE[$choice]:-} || -n ${SEEN[$choice]:-} ]] && continue
        SEEN[$choice]=1
        DEPS+=("$choice")
    done < <(deps_of "$pkg")
done
DEPS+=(iproute2 nftables)
log "runtime dependencies: ${DEPS[*]}"

# Dry run first: refuse if apt would pull in an MTA or an excluded package.
sim=$(apt-get install -s -y --no-install-recommends "${DEPS[@]}")
while read -r p; do
    [[ -n ${EXCLUDE[$p]:-} ]] && die "apt would install excluded package $p (deps: ${DEPS[*]})"
done < <(awk '/^Inst /{print $2}' <<<"$sim")
missing=()
for p in "${DEPS[@]}"; do installed "$p" || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "apt-get install ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "runtime dependencies already installed (${DEPS[*]})"
fi

# --- 3. users and groups (as the packages' postinst would) -------------------
ensure_group() { getent group "$1" >/dev/null || addgroup --system --quiet "$1"; }
for m in "${MTAS[@]}"; do
    case $m in
        postfix)
            ensure_group postfix
            ensure_group postdrop
            getent passwd postfix >/dev/null ||
                adduser --system --quiet --home /var/spool/postfix --no-create-home \
                    --disabled-password --ingroup postfix postfix
            ;;
        exim)
            getent passwd Debian-exim >/dev/null ||
                adduser --system --group --quiet --home /var/spool/exim4 \
                    --no-create-home --disabled-login --force-badname Debian-exim
            ;;
        opensmtpd)
            ensure_group opensmtpd
            ensure_group opensmtpq
            getent passwd opensmtpd >/dev/null ||
                adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home \
                    --disabled-password --gecos "OpenSMTPD Daemon" --ingroup opensmtpd opensmtpd
            getent passwd opensmtpq >/dev/null ||
                adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home \
                    --disabled-password --gecos "OpenSMTPD queue user" --ingroup opensmtpq opensmtpq
            ;;
    esac
done

# --- 4. download and unpack into private roots -------------------------------
DL=$(mktemp -d /tmp/mxsim-live-debs.XXXXXX)
trap 'rm -rf "$DL"' EXIT
chmod 0755 "$DL"
chown _apt "$DL" 2>/dev/null || true   # lets apt download sandboxed, no warning

fixup_postfix() {
    local r=$1
    chgrp postdrop "$r/usr/sbin/postdrop" "$r/usr/sbin/postqueue"
    chmod 02555 "$r/usr/sbin/postdrop" "$r/usr/sbin/postqueue"
    # postinst: dynamicmaps.cf lists only the map plugins present; master.cf from dist.
    { grep '^#' "$r/usr/share/postfix/dynamicmaps.cf"
      grep -v '^#' "$r/usr/share/postfix/dynamicmaps.cf" | while read -r dict _; do
          [[ -e $r/usr/lib/postfix/postfix-$dict.so ]] && grep "^$dict[[:space:]]" "$r/usr/share/postfix/dynamicmaps.cf"
      done; } >"$r/etc/postfix/dynamicmaps.cf" || true
    chmod 0644 "$r/etc/postfix/dynamicmaps.cf"
    cp "$r/usr/share/postfix/master.cf.dist" "$r/etc/postfix/master.cf"
    mkdir -p "$r/var/lib/postfix" "$r/var/spool/postfix"
}
fixup_exim() {
    local r=$1
    # mount points used inside the namespace
    install -d -o Debian-exim -g Debian-exim -m 0750 "$r/var/spool/exim4" "$r/run/exim4"
    install -d -o Debian-exim -g adm -m 2750 "$r/var/log/exim4"
    install -d -m 0755 "$r/var/lib/exim4"
    chgrp Debian-exim "$r/etc/exim4/passwd.client"
    chmod 0640 "$r/etc/exim4/passwd.client"
}
fixup_opensmtpd() {
    local r=$1
    chgrp opensmtpq "$r/usr/sbin/smtpctl"
    chmod 02755 "$r/usr/sbin/smtpctl"
    install -d -m 0711 "$r/var/spool/smtpd"
    install -d -m 0755 "$r/var/lib/opensmtpd/empty"
}

for m in "${MTAS[@]}"; do
    # shellcheck disable=SC2207
    pkgs=($(pkgs_of "$m"))
    want=$(apt-cache policy "${pkgs[0]}" | awk '/Candidate:/ {print $2}')
    [[ -n $want && $want != "(none)" ]] || die "no candidate for ${pkgs[0]}"
    dest=$BASE/$m
    if [[ -z ${MXSIM_LIVE_FORCE:-} && -d $dest/root && -f $dest/version &&
          $(head -n1 "$dest/version") == "$want" ]]; then
        log "$m $want already in $dest/root"
        continue
    fi
    log "unpacking $m ($want) into $dest/root"
    mkdir -p "$DL/$m"; chown _apt "$DL/$m" 2>/dev/null || true
    (cd "$DL/$m" && apt-get download -qq "${pkgs[@]}" >/dev/null)
    mkdir -p "$dest"
    rm -rf "$dest/root.new"
    mkdir -m 0755 "$dest/root.new"
    versions=()
    for p in "${pkgs[@]}"; do
        deb=$(ls "$DL/$m/${p}_"*.deb)
        dpkg-deb -x "$deb" "$dest/root.new"
        versions+=("$p $(dpkg-deb -f "$deb" Version)")
    done
    chmod 0755 "$dest/root.new"
    "fixup_$m" "$dest/root.new"
    rm -rf "$dest/root"
    mv "$dest/root.new" "$dest/root"
    { echo "$want"; printf '%s\n' "${versions[@]}"; } >"$dest/version"
done

log "done: ${MTAS[*]} under $BASE"
