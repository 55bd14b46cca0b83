#!/bin/sh
# test.sh: installs what is missing and runs the whole hsm-acme test suite against SoftHSM.
#
# Stages: formatting, clippy, unit and SoftHSM integration tests (every test on a token of
# its own), then the demo from scratch in a scratch directory, checked with openssl and
# pkcs11-tool, and run a second time to prove it reuses what it made.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

ensure_packages $HSM_ACME_PACKAGES
ensure_cargo
cd "$repo"

stage() { printf '\n==> %s\n' "$*"; }

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

stage "unit and SoftHSM integration tests"
cargo test --locked

stage "demo.sh from scratch"
# Ports in the interop harness's range, so nothing else on the machine is in the way.
export HSM_ACME_PUBLICATION_LISTEN=127.0.0.1:14090
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
demo="$scratch/demo"
HSM_ACME_DEMO_DIR="$demo" HSM_ACME_CARGO_PROFILE=dev "$here/demo.sh" --setup-only > "$scratch/demo1.log" 2>&1 ||
    { cat "$scratch/demo1.log"; exit 1; }
bin="$repo/target/debug/hsm-acme"
export SOFTHSM2_CONF="$demo/softhsm2.conf"

stage "demo: hsm check, openssl verify, key attributes, no private key on disk"
"$bin" --config "$demo/hsm-acme.toml" hsm check
openssl verify -x509_strict -CAfile "$demo/trust-anchor.pem" "$demo/issuing-ca.pem"
listing=$(pkcs11-tool --module "$(softhsm_module)" --token-label hsm-acme-demo --login \
    --pin "$(cat "$demo/hsm-pin")" --list-objects 2>/dev/null)
keys=$(printf '%s\n' "$listing" | grep -c -E '^(Private|Secret) Key Object' || true)
good=$(printf '%s\n' "$listing" | grep -E '^[[:space:]]+Access:' |
    grep 'sensitive' | grep 'never extractable' | grep -v -E '(^|, )extractable' | wc -l)
echo "private/secret keys on the token: $keys, sensitive and never extractable: $good"
[ "$keys" -eq 3 ] && [ "$good" -eq 3 ] || { printf '%s\n' "$listing"; exit 1; }
if grep -rl "PRIVATE KEY" "$demo" --exclude-dir=tokens; then
    echo "a private key file exists outside the token" >&2; exit 1
fi

stage "demo.sh again: reuses token and CA"
before=$(sha256sum "$demo/trust-anchor.pem")
HSM_ACME_DEMO_DIR="$demo" HSM_ACME_CARGO_PROFILE=dev "$here/demo.sh" --setup-only > "$scratch/demo2.log" 2>&1 ||
    { cat "$scratch/demo2.log"; exit 1; }
grep -q "reusing token" "$scratch/demo2.log"
[ "$before" = "$(sha256sum "$demo/trust-anchor.pem")" ] || { echo "trust anchor changed" >&2; exit 1; }

stage "interop: every client and every case of the harness against demo.sh's server"
interop=${HSM_ACME_INTEROP_DIR:-$repo/../shared/interop}
if [ ! -x "$interop/run-clients.sh" ]; then
    echo "the interop harness is not at $interop (set HSM_ACME_INTEROP_DIR); it did NOT run" >&2
    exit 1
fi
"$interop/install-clients.sh"
dns_state="$scratch/dnsmock"
"$interop/dns-mock.sh" start --state-dir "$dns_state"
HSM_ACME_DEMO_DIR="$demo" HSM_ACME_CARGO_PROFILE=dev HSM_ACME_LISTEN=127.0.0.1:14000 \
    HSM_ACME_HTTP01_PORT=14080 HSM_ACME_TLSALPN01_PORT=14043 \
    HSM_ACME_DNS_RESOLVER=127.0.0.1:14053 "$here/demo.sh" > "$scratch/serve.log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    "$interop/dns-mock.sh" stop --state-dir "$dns_state" >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
    curl -s -o /dev/null --cacert "$demo/trust-anchor.pem" https://127.0.0.1:14000/directory && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$scratch/serve.log"; exit 1; }
    sleep 0.1
done
"$interop/run-clients.sh" --directory https://127.0.0.1:14000/directory \
    --ca-bundle "$demo/trust-anchor.pem" --root-ca "$demo/trust-anchor.pem" \
    --http-port 14080 --tls-port 14043 \
    --dns-mgmt http://127.0.0.1:14055 --dns-server 127.0.0.1:14053 ||
    { tail -50 "$scratch/serve.log"; exit 1; }

stage "the demo's second endpoint lists its certificate profile"
curl -sf --cacert "$demo/trust-anchor.pem" https://127.0.0.1:14000/acme/xroad/directory |
    jq -e '.meta.profiles["xroad-auth"] and (.newOrder | endswith("/acme/xroad/new-order"))'

stage "interop: every client through the named endpoint /acme/default/directory"
# Every case but the harness's own `register` check, which looks for certbot's account at
# accounts/*/*/*/regr.json, one directory level per URL path segment of /directory; certbot
# keeps it deeper for /acme/default/directory. The clients register in every other case.
cases=update-account,http01-single,http01-multisan,dns01-wildcard,tlsalpn01,key-ec256,key-ec384
cases=$cases,key-rsa2048,key-rsa3072,renew,revoke,revoke-again,revoke-certkey,key-rollover
cases=$cases,old-key-rejected,deactivate,deactivated-rejected,http01-invalid,finalize-bad-csr
cases=$cases,authz-deactivate
"$interop/run-clients.sh" --directory https://127.0.0.1:14000/acme/default/directory \
    --ca-bundle "$demo/trust-anchor.pem" --root-ca "$demo/trust-anchor.pem" \
    --http-port 14080 --tls-port 14043 --domain named.interop.test --cases "$cases" \
    --dns-mgmt http://127.0.0.1:14055 --dns-server 127.0.0.1:14053 ||
    { tail -50 "$scratch/serve.log"; exit 1; }

stage "CRL at the distribution point: signed by the issuing CA, lists the revoked certificates"
sleep 2 # the CRL is re-signed a second after the last revocation
curl -sf -o "$scratch/issuing.crl" http://127.0.0.1:14090/crl/issuing.crl
curl -sf -o "$scratch/issuing.crt" http://127.0.0.1:14090/ca/issuing.crt
openssl x509 -inform DER -in "$scratch/issuing.crt" -noout -subject
openssl crl -inform DER -in "$scratch/issuing.crl" -CAfile "$demo/issuing-ca.pem" -noout -verify
revoked=$(openssl crl -inform DER -in "$scratch/issuing.crl" -noout -text | grep -c 'Serial Number:' || true)
echo "revoked certificates on the CRL: $revoked"
[ "$revoked" -ge 1 ] || { echo "the interop revocations are not on the CRL" >&2; exit 1; }
curl -sf -o "$scratch/root.crl" http://127.0.0.1:14090/crl/root.crl
openssl crl -inform DER -in "$scratch/root.crl" -CAfile "$demo/trust-anchor.pem" -noout -verify

stage "lint: a certificate for a public-looking name, both CAs and both CRLs (pkilint)"
# The mock DNS answers every name with 127.0.0.1, so certbot can prove www.example.com.
REQUESTS_CA_BUNDLE="$demo/trust-anchor.pem" certbot certonly -n --standalone \
    --http-01-port 14080 --http-01-address 127.0.0.1 \
    --server https://127.0.0.1:14000/directory -d www.example.com \
    --agree-tos -m lint@example.org --no-eff-email \
    --config-dir "$scratch/certbot" --work-dir "$scratch/certbot" --logs-dir "$scratch/certbot" \
    > "$scratch/certbot.log" 2>&1 || { cat "$scratch/certbot.log"; exit 1; }
"$here/lint.sh" --leaf "$scratch/certbot/live/www.example.com/cert.pem" \
    --issuing "$demo/issuing-ca.pem" --root "$demo/trust-anchor.pem" \
    --crl "$scratch/issuing.crl" --arl "$scratch/root.crl" --allow-host 127.0.0.1

stage "interop with external account binding required: certbot, lego, python-acme"
kill "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
HSM_ACME_EAB_REQUIRED=1 HSM_ACME_DEMO_DIR="$demo" HSM_ACME_CARGO_PROFILE=dev \
    HSM_ACME_LISTEN=127.0.0.1:14000 HSM_ACME_HTTP01_PORT=14080 HSM_ACME_TLSALPN01_PORT=14043 \
    HSM_ACME_DNS_RESOLVER=127.0.0.1:14053 "$here/demo.sh" > "$scratch/serve-eab.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
    curl -s -o "$scratch/directory.json" --cacert "$demo/trust-anchor.pem" \
        https://127.0.0.1:14000/directory && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$scratch/serve-eab.log"; exit 1; }
    sleep 0.1
done
grep -q '"externalAccountRequired":true' "$scratch/directory.json" ||
    { echo "the directory does not say externalAccountRequired" >&2; exit 1; }
accounts() { "$bin" --config "$demo/hsm-acme.toml" account list --json | jq "$1"; }
unbound_before=$(accounts '[.[] | select(.eab_kid == null)] | length')
total_before=$(accounts length)
# Without a key, certbot and lego are refused (they read the directory's
# externalAccountRequired; python-acme's eab-required case below asks the server itself),
# and no account is made.
if REQUESTS_CA_BUNDLE="$demo/trust-anchor.pem" certbot register -n --agree-tos \
    -m noeab@example.org --server https://127.0.0.1:14000/directory \
    --config-dir "$scratch/certbot-noeab" --work-dir "$scratch/certbot-noeab" \
    --logs-dir "$scratch/certbot-noeab" > "$scratch/certbot-noeab.log" 2>&1; then
    echo "certbot registered without EAB" >&2; exit 1
fi
grep -q "requires external account binding" "$scratch/certbot-noeab.log" ||
    { cat "$scratch/certbot-noeab.log"; exit 1; }
if LEGO_CA_CERTIFICATES="$demo/trust-anchor.pem" lego --server https://127.0.0.1:14000/directory \
    --path "$scratch/lego-noeab" --accept-tos --email noeab@example.org \
    --domains noeab.lego.test --http --http.port 127.0.0.1:14080 run \
    > "$scratch/lego-noeab.log" 2>&1; then
    echo "lego registered without EAB" >&2; exit 1
fi
grep -q "requires External Account Binding" "$scratch/lego-noeab.log" ||
    { cat "$scratch/lego-noeab.log"; exit 1; }
[ "$(accounts length)" -eq "$total_before" ] || { echo "an account was made without EAB" >&2; exit 1; }
# Through the running server's admin socket; the key is printed once, as JSON for scripts.
"$bin" --config "$demo/hsm-acme.toml" eab create --profile default --reusable --json \
    > "$scratch/eab.json"
kid=$(jq -r .kid "$scratch/eab.json")
hmac=$(jq -r .hmac_key "$scratch/eab.json")
[ -n "$kid" ] && [ "$kid" != null ] && [ -n "$hmac" ] && [ "$hmac" != null ] ||
    { cat "$scratch/eab.json"; exit 1; }
if grep -F -q "$hmac" "$demo/state.redb" "$scratch/serve-eab.log"; then
    echo "the HMAC key is in the clear in the state file or the log" >&2; exit 1
fi
"$interop/run-clients.sh" --directory https://127.0.0.1:14000/directory \
    --ca-bundle "$demo/trust-anchor.pem" --root-ca "$demo/trust-anchor.pem" \
    --http-port 14080 --tls-port 14043 \
    --dns-mgmt http://127.0.0.1:14055 --dns-server 127.0.0.1:14053 \
    --clients certbot,lego,pyacme --cases register,eab-required,eab-bad-mac,http01-single \
    --eab-kid "$kid" --eab-hmac-key "$hmac" ||
    { tail -50 "$scratch/serve-eab.log"; exit 1; }

stage "public-key EAB: the README's client against the running server"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$scratch/eab-key.pem" 2>/dev/null
openssl pkey -in "$scratch/eab-key.pem" -pubout -out "$scratch/eab-key.pub.pem"
"$bin" --config "$demo/hsm-acme.toml" eab create --profile default \
    --public-key "$scratch/eab-key.pub.pem" --label "test.sh" --json > "$scratch/eab-pub.json" ||
    { cat "$scratch/eab-pub.json"; tail -50 "$scratch/serve-eab.log"; exit 1; }
pub_kid=$(jq -r .kid "$scratch/eab-pub.json")
[ -n "$pub_kid" ] && [ "$pub_kid" != null ] ||
    { cat "$scratch/eab-pub.json"; tail -50 "$scratch/serve-eab.log"; exit 1; }
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" "$here/eab-public-key.py" --directory https://127.0.0.1:14000/directory \
    --kid "$pub_kid" --eab-key "$scratch/eab-key.pem" --ca-bundle "$demo/trust-anchor.pem" \
    --contact mailto:pubkey@example.org | tee "$scratch/pubkey.out"
grep -q '^status: valid$' "$scratch/pubkey.out"
total_after=$(accounts length)
echo "accounts: $total_before before the EAB clients, $total_after after, each new one bound to a key"
[ "$total_after" -ge $((total_before + 4)) ] ||
    { echo "expected accounts from certbot, lego, python-acme and the public-key client" >&2; exit 1; }
[ "$(accounts '[.[] | select(.eab_kid == null)] | length')" -eq "$unbound_before" ] ||
    { echo "an account without EAB was made while EAB was required" >&2; exit 1; }
"$bin" --config "$demo/hsm-acme.toml" eab show "$pub_kid" --json | jq -e '.accounts | length == 1' >/dev/null

stage "all tests passed"
