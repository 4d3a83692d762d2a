#!/usr/bin/env bash
# A private Tor network on loopback: one directory authority, two exit
# relays and one client with a SOCKS port. For testing Allium's --tor mode
# on a machine with no internet (Debian's `tor` package is all it needs).
#
#   scripts/tor-private-net.sh start DIR   # prints "ready" and the settings, writes DIR/tor-net.env
#   scripts/tor-private-net.sh stop DIR    # stops every tor process it started
#
# DIR/tor-net.env holds, as shell variables: TOR_SOCKS (host:port of the
# client's SOCKS port), TOR_AUTH_V3IDENT, TOR_AUTH_FINGERPRINT,
# TOR_AUTH_ED25519, TOR_AUTH_ORPORT, TOR_AUTH_DIRPORT (what an arti client
# needs as custom authority and fallback cache) and TOR_EXIT_PIDS (the exit
# relays' process ids, space-separated).
#
# The torrc options and their reasons are in ../shared/TOR-PRIVATE-NETWORK.md
# (measured facts for this machine): AssumeReachable, fast voting intervals,
# and readiness only once the consensus lists both exits.
#
# Exit policy: `accept *:*`. A policy that accepts only 127.0.0.0/8 is
# summarised in the exits' microdescriptors as "reject every port", and arti
# (which, unlike C tor with UseMicrodescriptors 0, reads only
# microdescriptors) then finds no exit at all. Only the clients we start
# know this network, and they only ask for loopback addresses; for a hard guarantee
# that nothing leaves the machine, run it inside `unshare -rn` with lo up.
set -euo pipefail

cmd="${1:-}"
DIR="${2:-}"
[ -n "$cmd" ] && [ -n "$DIR" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

stop() {
    for pidfile in "$DIR"/*/tor.pid; do
        [ -f "$pidfile" ] || continue
        pid="$(cat "$pidfile")"
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pidfile in "$DIR"/*/tor.pid; do
        [ -f "$pidfile" ] || continue
        pid="$(cat "$pidfile")"
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
command -v tor >/dev/null && command -v tor-gencert >/dev/null || {
    echo "tor is not installed (Debian: apt-get install tor)" >&2
    exit 2
}

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
# If anything below fails, leave no tor process behind.
trap 'status=$?; if [ $status -ne 0 ]; then stop; fi' EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

AUTH_OR=$(free_port); AUTH_DIR=$(free_port); EXIT1_OR=$(free_port); EXIT2_OR=$(free_port); SOCKS=$(free_port)
AUTH="$DIR/auth"
for d in "$AUTH" "$DIR/exit1" "$DIR/exit2" "$DIR/client"; do
    mkdir -p "$d"
    chmod 700 "$d"
done
mkdir -p "$AUTH/keys"

# Authority keys: identity and signing key; its v3ident is the
# certificate's fingerprint.
echo "" | tor-gencert --create-identity-key -m 12 -a "127.0.0.1:$AUTH_DIR" \
    -i "$AUTH/keys/authority_identity_key" -s "$AUTH/keys/authority_signing_key" \
    -c "$AUTH/keys/authority_certificate" --passphrase-fd 0 >/dev/null 2>&1
V3IDENT="$(awk '/^fingerprint /{print $2}' "$AUTH/keys/authority_certificate")"
FP="$(tor --ignore-missing-torrc -f /dev/null --defaults-torrc /dev/null --quiet \
    --DataDirectory "$AUTH" --Address 127.0.0.1 --ORPort "127.0.0.1:$AUTH_OR" --list-fingerprint \
    | tail -n 1 | cut -d' ' -f2- | tr -d ' ')"
DIRAUTH="DirAuthority auth orport=$AUTH_OR v3ident=$V3IDENT 127.0.0.1:$AUTH_DIR $FP"

common() { # $1 = data dir
    cat <<EOF
TestingTorNetwork 1
DataDirectory $1
PidFile $1/tor.pid
Log notice file $1/notice.log
ShutdownWaitLength 0
GeoIPFile /dev/null
GeoIPv6File /dev/null
$DIRAUTH
EOF
}

relay() { # $1 = nickname, $2 = OR port
    cat <<EOF
Nickname $1
Address 127.0.0.1
ORPort 127.0.0.1:$2
SocksPort 0
AssumeReachable 1
EOF
}

# The first consensus about 5.5 s after launch; earlier would miss the
# relays' descriptors and cost a whole voting interval.
launch=$(date +%s)
OFFSET=$(( (launch + 6) % 5 ))
{
    common "$AUTH"
    relay auth "$AUTH_OR"
    cat <<EOF
DirPort 127.0.0.1:$AUTH_DIR
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ExitRelay 0
TestingV3AuthInitialVotingInterval 5
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
TestingV3AuthVotingStartOffset $OFFSET
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
TestingDirAuthVoteGuard *
EOF
} >"$AUTH/torrc"

for n in 1 2; do
    d="$DIR/exit$n"
    port_var="EXIT${n}_OR"
    {
        common "$d"
        relay "exit$n" "${!port_var}"
        cat <<EOF
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicy accept *:*
DirCache 0
RefuseUnknownExits 0
ServerDNSResolvConfFile /dev/null
ServerDNSDetectHijacking 0
ServerDNSTestAddresses
EOF
    } >"$d/torrc"
done

{
    common "$DIR/client"
    cat <<EOF
SocksPort 127.0.0.1:$SOCKS
UseMicrodescriptors 0
EOF
} >"$DIR/client/torrc"

for d in "$AUTH" "$DIR/exit1" "$DIR/exit2"; do
    tor -f "$d/torrc" --RunAsDaemon 1 >"$d/stdout.log" 2>&1
done

# Start the client only once the consensus lists both exits.
for _ in $(seq 1 600); do
    if [ -f "$AUTH/cached-consensus" ] && [ "$(grep -c '^r exit' "$AUTH/cached-consensus")" = 2 ]; then
        break
    fi
    sleep 0.1
done
[ "$(grep -c '^r exit' "$AUTH/cached-consensus" 2>/dev/null || echo 0)" = 2 ] || {
    echo "no consensus listing both exits after 60 s (see $AUTH/notice.log)" >&2
    exit 1
}
tor -f "$DIR/client/torrc" --RunAsDaemon 1 >"$DIR/client/stdout.log" 2>&1
for _ in $(seq 1 600); do
    grep -q 'Bootstrapped 100%' "$DIR/client/notice.log" 2>/dev/null && break
    sleep 0.1
done
grep -q 'Bootstrapped 100%' "$DIR/client/notice.log" || {
    echo "the client did not bootstrap in 60 s (see $DIR/client/notice.log)" >&2
    exit 1
}

cat >"$DIR/tor-net.env" <<EOF
TOR_SOCKS=127.0.0.1:$SOCKS
TOR_AUTH_V3IDENT=$V3IDENT
TOR_AUTH_FINGERPRINT=$FP
TOR_AUTH_ED25519=$(awk '{print $2}' "$AUTH/fingerprint-ed25519")
TOR_AUTH_ORPORT=127.0.0.1:$AUTH_OR
TOR_AUTH_DIRPORT=127.0.0.1:$AUTH_DIR
TOR_EXIT_PIDS="$(cat "$DIR/exit1/tor.pid") $(cat "$DIR/exit2/tor.pid")"
EOF
echo "ready in $(( $(date +%s) - launch ))s: SOCKS 127.0.0.1:$SOCKS; settings in $DIR/tor-net.env"
