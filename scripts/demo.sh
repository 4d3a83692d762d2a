#!/usr/bin/env bash
# The README's first command: builds Allium, starts a local network of 12
# service nodes and three seeds (their identity keys kept apart, as an
# operator keeps them offline), each on its own loopback address, creates two
# identities, has them exchange messages both ways through 3-relay onion
# paths, shows that every link is TLS 1.3 keyed by the node's own Ed25519
# key, shows a hostile message arriving harmless and a flooded inbox still
# working, links a second device, runs a private group (with a member
# removed), sends files, shows two full-screen `allium chat` clients
# talking, prints the transcript, and stops the network. Everything lives in a temporary
# directory that is removed at the end (set KEEP=1 to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES="${NODES:-12}"
echo "==> building (release)"
cargo build --release --quiet -p allium-node -p allium-client
cargo build --release --quiet -p allium-tests --bin allium-screen
BIN="$PWD/target/release"
DIR="$(mktemp -d -t allium-demo.XXXXXX)"
DEVNET_PID=""

cleanup() {
    if [ -n "$DEVNET_PID" ] && kill -0 "$DEVNET_PID" 2>/dev/null; then
        kill -TERM "$DEVNET_PID" 2>/dev/null || true
        wait "$DEVNET_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = "1" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

echo "==> starting a local network: 3 seeds that vote on one consensus + $NODES nodes"
"$BIN/allium-node" devnet --nodes "$NODES" --dir "$DIR/net" >"$DIR/devnet.log" 2>&1 &
DEVNET_PID=$!
for _ in $(seq 1 600); do
    grep -q '^ready' "$DIR/devnet.log" && break
    kill -0 "$DEVNET_PID" 2>/dev/null || { cat "$DIR/devnet.log"; exit 1; }
    sleep 0.1
done
grep '^ready' "$DIR/devnet.log" || { echo "the network did not come up"; cat "$DIR/devnet.log"; exit 1; }

alice() { "$BIN/allium" --home "$DIR/alice" --seeds "$DIR/net/seed-nodes.toml" "$@"; }
bob() { "$BIN/allium" --home "$DIR/bob" --seeds "$DIR/net/seed-nodes.toml" "$@"; }

echo "==> two identities (no phone number, no e-mail: a recovery phrase each)"
ALICE_PHRASE="$(alice --json init | sed -n 's/.*"mnemonic":"\([^"]*\)".*/\1/p')"
bob init >/dev/null
ALICE_ID="$(alice id)"
BOB_ID="$(bob id)"
echo "alice: $ALICE_ID"
echo "bob:   $BOB_ID"
alice contacts add bob "$BOB_ID" >/dev/null
bob contacts add alice "$ALICE_ID" >/dev/null
echo "==> alice picks a display name; it travels with her messages, and all her devices share it"
alice profile --name "Alice"

echo "==> the network as alice sees it"
alice nodes

echo "==> the seed file names identity keys that stay offline ($DIR/net/offline/); each running seed signs with a key its identity certified:"
cat "$DIR/net/seed-0/seed_key_cert.json"; echo

echo "==> conversation (each message: sealed, signed, stored in the recipient's swarm through guard -> middle -> exit)"
alice send bob "Hi Bob, this went through three relays."
bob inbox
bob send alice "Hi Alice! Nobody between us knows both of our addresses."
alice inbox
alice send bob "And the swarm keeps it until you come online."
bob inbox

echo "==> every link is TLS 1.3; a node's certificate carries its Ed25519 key, which peers pin"
FIRST="$DIR/net/node-00/node.json"
NODE="$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' "$FIRST")"
echo "node-00 key in node.json: $(sed -n 's/.*"ed25519":"\([^"]*\)".*/\1/p' "$FIRST")"
curl -skv -o /dev/null "https://$NODE/health" 2>&1 | grep -E 'SSL connection using|subject:' | sed 's/^\* *//' || true

echo "==> a hostile message: terminal escapes and a forged second line arrive escaped, on one line"
alice send bob "$(printf 'look\033[2J\033]0;pwned\007\n[2026-01-01 00:00:00] %s: send me your phrase' "$ALICE_ID")" >/dev/null
bob inbox

echo "==> a stranger floods bob's inbox with 76 KB of junk, 20 times; bob's inbox still works"
junk() {
    head -c 57000 /dev/urandom | base64 -w0 > "$DIR/junk.b64"
    printf '{"method":"store","params":{"pubkey":"%s","timestamp":%s,"ttl":600000,"data":"%s"}}' \
        "$BOB_ID" "$(date +%s%3N)" "$(cat "$DIR/junk.b64")" > "$DIR/junk.json"
    curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.5 -X POST "https://$1/storage_rpc/v1" -k \
        -H 'content-type: application/json' --data-binary @"$DIR/junk.json" || true
}
# The stranger finds a member of Bob's swarm (the others answer 421).
TARGET=""
for info in "$DIR"/net/node-*/node.json; do
    NODE="$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' "$info")"
    if [ "$(junk "$NODE")" = 200 ]; then TARGET="$NODE"; break; fi
done
for _ in $(seq 2 20); do junk "$TARGET" >/dev/null; done
alice send bob "Still reachable after the flood." >/dev/null
bob inbox || true

echo "==> a stranger writes to bob: the message waits in bob's requests, not his inbox, until he accepts"
carol() { "$BIN/allium" --home "$DIR/carol" --seeds "$DIR/net/seed-nodes.toml" "$@"; }
carol init >/dev/null
CAROL_ID="$(carol id)"
carol send "$BOB_ID" "Hi Bob, we met at the conference." >/dev/null
bob inbox || true
bob requests
bob requests accept "$CAROL_ID" --name carol
carol inbox || true

echo "==> alice makes the conversation disappear 10 s after sending; bob's side follows"
alice disappear bob after-send 10s
bob inbox || true
alice send bob "This line will be gone in 10 seconds." >/dev/null
bob inbox || true
sleep 11
echo "bob's history with alice after 11 s:"
bob history alice || echo "(nothing left)"
alice disappear bob off >/dev/null

echo "==> alice takes a message back: it leaves bob's devices and his swarm"
OOPS="$(alice --json send bob "Oops, that was meant for someone else." | sed -n 's/.*"hash":"\([^"]*\)".*/\1/p')"
bob inbox || true
alice unsend "$OOPS"
bob inbox || true
alice send bob "See you tomorrow." >/dev/null
bob send alice "See you!" >/dev/null
alice inbox >/dev/null || true

echo "==> forward secrecy is on by default: each account published rotating X-Wing keys at its first round"
alice id --keys
echo "bob's history: early messages went out before alice had keys, later ones are sealed to them"
bob history alice | tail -n 3

echo "==> alice links her laptop: restored from the phrase, it asks to be linked and shows a code; her phone shows the same code and approves it"
alice2() { "$BIN/allium" --home "$DIR/alice2" --seeds "$DIR/net/seed-nodes.toml" "$@"; }
printf '%s\n' "$ALICE_PHRASE" | alice2 restore >/dev/null 2>&1 || true
LINK="$(alice2 --json devices link --name laptop --wait 0)"
LINK_ID="$(printf '%s' "$LINK" | sed -n 's/.*"device":"\([^"]*\)".*/\1/p')"
echo "the laptop shows: device $LINK_ID, code $(printf '%s' "$LINK" | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')"
alice devices
alice devices approve "$LINK_ID"
alice2 devices
bob send alice "This one is sealed to alice's current key: her phone and her laptop both read it." >/dev/null
echo "laptop:"; alice2 inbox || true
echo "phone:";  alice inbox || true

echo "==> a private group: alice makes one with bob and carol; the nodes never learn who is in it"
carol contacts add alice "$ALICE_ID" >/dev/null
alice contacts add carol "$CAROL_ID" >/dev/null
alice group create garden --member bob --member carol
bob inbox || true
carol inbox || true
alice send garden "Welcome to the garden." >/dev/null
bob send garden "Glad to be here." >/dev/null
carol inbox || true
echo "alice's laptop follows the group too (it is in her synced state):"
alice2 inbox || true
alice2 group info garden
echo "==> alice removes carol: her credential is revoked on the group's swarm and a new key goes to alice and bob only"
alice group remove garden carol
alice send garden "Only bob and I read this." >/dev/null
bob inbox || true
echo "carol's client:"
carol inbox || true

echo "==> files: a photo for bob (fetched on its own: under 10 MB) and a 20 MB archive for the group; the nodes hold only equal-sized encrypted chunks, spread over the swarms"
head -c 3000000 /dev/urandom > "$DIR/photo.jpg"
head -c 20000000 /dev/urandom > "$DIR/archive.tar"
alice send --file "$DIR/photo.jpg" bob "The view from here." >/dev/null
bob inbox || true
ARCHIVE="$(alice --json send --file "$DIR/archive.tar" --name "../../archive.tar" garden "Everything, in one file." | sed -n 's/.*"hash":"\([^"]*\)".*/\1/p')"
bob inbox || true
mkdir -p "$DIR/bob-saved"
echo "bob saves it (the name the sender gave cannot leave the directory):"
bob save "$ARCHIVE" "$DIR/bob-saved"
sha256sum "$DIR/archive.tar" "$DIR/bob-saved/archive.tar"

echo "==> allium chat, the full-screen client: alice types to bob, and bob's screen shows it (both on pseudo-terminals, read back as text)"
chat_screen() {
    local who="$1"; shift
    "$BIN/allium-screen" --cols 100 --rows 20 "$@" -- "$BIN/allium" --home "$DIR/$who" --seeds "$DIR/net/seed-nodes.toml" chat
}
chat_screen bob --step wait=" to " --step type="/open alice" --step key=enter --step wait="to alice" \
    --step wait="Typed in allium chat" --step sleep=500 --step show --step type=/quit --step key=enter > "$DIR/bob-screen.txt" &
BOB_SCREEN=$!
chat_screen alice --step wait=" to " --step type="/open bob" --step key=enter --step wait="to bob" \
    --step type="Typed in allium chat 🌱" --step key=enter \
    --step wait="allium chat 🌱 ✓" --step show --step type=/quit --step key=enter
wait "$BOB_SCREEN"
echo "bob's screen:"
cat "$DIR/bob-screen.txt"

echo "==> alice's devices are all lost: a new device restored from her phrase alone gets her name and contacts, not what was sealed with forward secrecy (and says so)"
alice3() { "$BIN/allium" --home "$DIR/alice3" --seeds "$DIR/net/seed-nodes.toml" "$@"; }
printf '%s\n' "$ALICE_PHRASE" | alice3 restore || true
alice3 contacts list

echo "==> transcript (alice's history)"
alice history bob
echo "==> done"
