#!/usr/bin/env bash
# What the tests need besides Go, make and bash: java and keytool (a JDK 17+),
# mvn and kcat for the real-Kafka suites, krb5kdc, kdb5_util and kadmin.local
# (an MIT KDC) for their Kerberos listener, promtool for the dashboard test.
# Installs the missing ones from Debian's packages when it can (root, or sudo
# without a password, and apt-get), else stops naming the command to run.
#
#   scripts/deps.sh [TOOL...]    default: java keytool mvn kcat krb5kdc kdb5_util kadmin.local promtool
#
# Run by `make deps`, and through it by `make test`, `make unit` (promtool
# only) and `make e2e` (NO_DEPS=1 skips it).
set -euo pipefail

declare -A package=(
	[java]=openjdk-17-jdk-headless
	[keytool]=openjdk-17-jdk-headless
	[mvn]=maven
	[kcat]=kcat
	[promtool]=prometheus
	[krb5kdc]=krb5-kdc
	[kdb5_util]=krb5-kdc
	[kadmin.local]=krb5-admin-server
)
# The KDC tools are in /usr/sbin, which is not on an ordinary user's PATH on
# Debian; testbench/kdc looks there too, so this check does.
sbin_dirs=(/usr/sbin /sbin)
tools=("$@")
((${#tools[@]} > 0)) || tools=(java keytool mvn kcat krb5kdc kdb5_util kadmin.local promtool)
for t in "${tools[@]}"; do
	[[ -n "${package[$t]:-}" ]] || { echo "deps.sh: unknown tool $t (known: ${!package[*]})" >&2; exit 2; }
done

# found reports whether tool $1 is on PATH or in an sbin directory.
found() {
	command -v "$1" >/dev/null 2>&1 && return 0
	local d
	for d in "${sbin_dirs[@]}"; do
		[[ -x "$d/$1" ]] && return 0
	done
	return 1
}

# missing_tools and missing_packages: what is not on PATH, and its packages (each once).
check() {
	hash -r
	missing_tools=() missing_packages=()
	local t p
	for t in "${tools[@]}"; do
		found "$t" && continue
		missing_tools+=("$t")
		p="${package[$t]}"
		[[ " ${missing_packages[*]} " == *" $p "* ]] || missing_packages+=("$p")
	done
}

check
if ((${#missing_tools[@]} == 0)); then
	echo "deps: ${tools[*]} found"
	exit 0
fi

if ((EUID == 0)); then sudo=(); else sudo=(sudo -n); fi

fail() {
	local s=""
	((EUID == 0)) || s="sudo "
	echo "deps: $1: ${missing_tools[*]}" >&2
	echo "deps: install them with:" >&2
	echo "    ${s}apt-get update && ${s}apt-get install -y ${missing_packages[*]}" >&2
	echo "deps: (not Debian or Ubuntu: install a JDK 17+ for java and keytool, Maven 3 for mvn, kcat, MIT Kerberos's KDC and admin tools for krb5kdc, kdb5_util and kadmin.local, and Prometheus for promtool; NO_DEPS=1 make ... skips this check)" >&2
	exit 1
}

can_install=true
command -v apt-get >/dev/null 2>&1 || can_install=false
if $can_install && ((EUID != 0)); then
	{ command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; } || can_install=false
fi
$can_install || fail "missing, and not installed here (needs root or sudo without a password, and apt-get)"

# apt_get runs its arguments as root, waiting up to 5 minutes for another apt or
# dpkg to finish: DPkg::Lock::Timeout covers dpkg's lock, but apt-get update
# fails at once on the lists lock, so a lock error is also retried here.
apt_get() {
	local err deadline=$((SECONDS + 300)) rc
	err="$(mktemp)"
	while :; do
		rc=0
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq "$@" >/dev/null 2>"$err" || rc=$?
		if ((rc != 0)) && grep -qE 'Could not get lock|Unable to (acquire|lock)' "$err" && ((SECONDS < deadline)); then
			echo "deps: apt is locked by another process; waiting" >&2
			sleep 5
			continue
		fi
		break
	done
	((rc == 0)) || cat "$err" >&2
	rm -f "$err"
	return "$rc"
}

echo "deps: missing ${missing_tools[*]}; installing ${missing_packages[*]} with apt-get"
# A failure here is not fatal by itself: the check after the installs decides.
apt_get update || echo "deps: apt-get update failed" >&2
# One package at a time, so one that fails to install leaves the others.
for p in "${missing_packages[@]}"; do
	apt_get install -y "$p" || echo "deps: apt-get install $p failed" >&2
done

check
((${#missing_tools[@]} == 0)) || fail "still missing after apt-get install"
echo "deps: ${tools[*]} found"
