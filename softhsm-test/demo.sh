#!/bin/sh
# demo.sh [--setup-only]: a complete hsm-acme CA on a SoftHSM token, from nothing.
#
# Installs what is missing (softhsm2, opensc, a build toolchain's C parts), builds hsm-acme,
# creates a token, a root and an issuing CA whose keys live only on the token, and a
# configuration, all under $HSM_ACME_DEMO_DIR (default: target/demo), then serves ACME on
# https://127.0.0.1:8443/directory. Running it again reuses the token, the CA and the state.
#
# Environment overrides: HSM_ACME_LISTEN (ip:port to serve on), HSM_ACME_HTTP01_PORT (port
# http-01 is validated on, default 80), HSM_ACME_TLSALPN01_PORT (default 443),
# HSM_ACME_DNS_RESOLVER (ip:port of the DNS server used for validation; default: the
# system's), HSM_ACME_PUBLICATION_LISTEN (plain-HTTP CRL and CA certificate listener,
# default 127.0.0.1:8080; its URL goes into certificates, so it is fixed when the demo is
# created), HSM_ACME_EAB_REQUIRED=1 (the default ACME profile then opens accounts only with
# an external account binding; `hsm-acme eab create` makes the keys).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

serve=1
[ "${1:-}" = "--setup-only" ] && serve=0
demo_dir=${HSM_ACME_DEMO_DIR:-$repo/target/demo}
listen=${HSM_ACME_LISTEN:-127.0.0.1:8443}
publication_listen=${HSM_ACME_PUBLICATION_LISTEN:-127.0.0.1:8080}
token_label=hsm-acme-demo

ensure_packages $HSM_ACME_PACKAGES
ensure_cargo
# HSM_ACME_CARGO_PROFILE=dev reuses a test build (test.sh); the demo itself runs release.
profile=${HSM_ACME_CARGO_PROFILE:-release}
case $profile in
    dev) target_dir=debug ;;
    *) target_dir=$profile ;;
esac
echo "building hsm-acme ($profile)..." >&2
(cd "$repo" && cargo build --profile "$profile" --locked --quiet --bin hsm-acme)
bin="$repo/target/$target_dir/hsm-acme"

mkdir -p "$demo_dir"
chmod 700 "$demo_dir"
demo_dir=$(cd "$demo_dir" && pwd)
export SOFTHSM2_CONF="$demo_dir/softhsm2.conf"
config="$demo_dir/hsm-acme.toml"

token_exists() {
    softhsm2-util --show-slots 2>/dev/null |
        grep -Eq "^[[:space:]]*Label:[[:space:]]+$token_label[[:space:]]*\$"
}

if [ -f "$demo_dir/hsm-pin" ]; then
    if ! token_exists; then
        echo "$demo_dir/hsm-pin exists but token $token_label is gone;" \
            "remove $demo_dir to start over" >&2
        exit 1
    fi
    echo "reusing token $token_label in $demo_dir/tokens" >&2
else
    # Fresh random PINs, readable only by their owner; the SO PIN is kept for maintenance.
    umask 077
    user_pin=$(openssl rand -hex 12)
    so_pin=$(openssl rand -hex 12)
    new_token "$demo_dir" "$token_label" "$user_pin" "$so_pin"
    printf '%s\n' "$user_pin" > "$demo_dir/hsm-pin"
    printf '%s\n' "$so_pin" > "$demo_dir/so-pin"
    umask 022
    echo "created token $token_label in $demo_dir/tokens" >&2
fi

if [ ! -f "$config" ]; then
    cat > "$config" <<CONF
# hsm-acme demo configuration (written by softhsm-test/demo.sh).
# Relative paths are relative to this file.

[hsm]
profile = "softhsm2"
module = "$(softhsm_module)"
token_label = "$token_label"
pin_file = "hsm-pin"
sessions = 4

[storage]
path = "state.redb"

# CRLs and CA certificates over plain HTTP; certificates point here (CRL distribution
# point, AIA caIssuers).
[publication]
listen = "$publication_listen"

# Seals EAB MAC keys and other stored secrets (AES-256-GCM on the token).
[sealing]
key_label = "hsm-acme-seal"

[[ca]]
name = "root"
key_label = "hsm-acme-root"
key_type = "ecdsa-p384"
subject = "CN=hsm-acme Demo Root CA,O=hsm-acme demo,C=EE"
certificate = "trust-anchor.pem"
validity_days = 3650

[[ca]]
name = "issuing"
key_label = "hsm-acme-issuing"
key_type = "ecdsa-p256"
subject = "CN=hsm-acme Demo Issuing CA,O=hsm-acme demo,C=EE"
certificate = "issuing-ca.pem"
issuer = "root"
path_len = 0
validity_days = 1825
CONF
    echo "wrote $config" >&2
fi

if ! grep -q '^\[publication\]' "$config"; then
    cat >> "$config" <<CONF

# CRLs and CA certificates over plain HTTP; certificates point here (CRL distribution
# point, AIA caIssuers).
[publication]
listen = "$publication_listen"
CONF
fi

if ! grep -q '^\[server\]' "$config"; then
    cat >> "$config" <<CONF

# The HTTPS listener. Its TLS key is generated on the token; its certificate is issued by
# the issuing CA at start-up (and renewed in the last third of its life).
[server]
listen = "127.0.0.1:8443"
tls_names = ["127.0.0.1", "localhost"]
tls_certificate = "server-tls.pem"
# `hsm-acme revoke` reaches the running server here (mode 0600).
admin_socket = "admin.sock"

[acme]
ca = "issuing"
validity_days = 90
caa_identities = ["hsm-acme.test"]
# Set from HSM_ACME_EAB_REQUIRED at every start of demo.sh.
eab_required = false

# A second endpoint, /acme/xroad/directory: X-Road security servers order authentication
# certificates with the CSR they make (C, O, serialNumber and the name in the CN).
[[endpoint]]
name = "xroad"
ca = "issuing"
certificate_profiles = ["xroad-auth"]

[[certificate_profile]]
name = "xroad-auth"
description = "X-Road security server authentication certificate"
validity_days = 365
extended_key_usage = ["clientAuth", "serverAuth"]
subject_attributes = ["C", "O", "serialNumber", "CN"]
subject_patterns = { C = "[A-Z]{2}" }
subject_required = ["C", "O", "serialNumber", "CN"]

[validation]
http01_port = 80
# Validation reaches public addresses, and these (set from HSM_ACME_VALIDATION_ALLOW).
allow_networks = ["127.0.0.1/32", "::1/128"]
CONF
fi

# The address served on is written into [server] too, so commands run on the state file
# with the server stopped name the same URLs as the server does.
sed -i "/^\[server\]/,/^\[/ s|^listen = .*|listen = \"$listen\"|" "$config"

# Networks validation may reach besides public addresses (and IP identifiers may name).
allow=$(printf '%s' "${HSM_ACME_VALIDATION_ALLOW:-127.0.0.1/32,::1/128}" |
    awk -F, '{ for (i = 1; i <= NF; i++) printf "%s\"%s\"", (i > 1 ? ", " : ""), $i }')
if grep -q '^allow_networks = ' "$config"; then
    sed -i "s|^allow_networks = .*|allow_networks = [$allow]|" "$config"
else
    sed -i "/^\[validation\]/a allow_networks = [$allow]" "$config"
fi

# HSM_ACME_EAB_REQUIRED=1: accounts only with an external account binding (RFC 8555 §7.3.4).
eab_required=false
[ "${HSM_ACME_EAB_REQUIRED:-0}" = 1 ] && eab_required=true
if grep -q '^eab_required = ' "$config"; then
    sed -i "s/^eab_required = .*/eab_required = $eab_required/" "$config"
else
    sed -i "/^\[acme\]/a eab_required = $eab_required" "$config"
fi

"$bin" --config "$config" ca init
"$bin" --config "$config" hsm check
openssl verify -CAfile "$demo_dir/trust-anchor.pem" "$demo_dir/issuing-ca.pem" >/dev/null

set -- --listen "$listen"
[ -n "${HSM_ACME_HTTP01_PORT:-}" ] && set -- "$@" --http01-port "$HSM_ACME_HTTP01_PORT"
[ -n "${HSM_ACME_TLSALPN01_PORT:-}" ] && set -- "$@" --tls-alpn01-port "$HSM_ACME_TLSALPN01_PORT"
[ -n "${HSM_ACME_DNS_RESOLVER:-}" ] && set -- "$@" --dns-resolver "$HSM_ACME_DNS_RESOLVER"
set -- "$@" --publication-listen "$publication_listen"

cat <<MSG

hsm-acme demo is set up in $demo_dir
  token:         $token_label (SoftHSM, SOFTHSM2_CONF=$SOFTHSM2_CONF)
  configuration: $config
  trust anchor:  $demo_dir/trust-anchor.pem (root CA; its key is on the token)
  issuing CA:    $demo_dir/issuing-ca.pem (key on the token)
  state:         $demo_dir/state.redb

ACME directory:  https://$listen/directory
X-Road endpoint: https://$listen/acme/xroad/directory (certificate profile xroad-auth)
CRLs, CA certs:  http://$publication_listen/crl/issuing.crl, http://$publication_listen/ca/issuing.crt

Point certbot at it (the name must resolve to this machine; http-01 is validated on port
${HSM_ACME_HTTP01_PORT:-80}, where certbot --standalone listens):
  REQUESTS_CA_BUNDLE=$demo_dir/trust-anchor.pem certbot certonly --standalone \\
    --server https://$listen/directory --http-01-port ${HSM_ACME_HTTP01_PORT:-80} \\
    --agree-tos -m admin@example.org --no-eff-email -d your-host.example \\
    --config-dir $demo_dir/certbot --work-dir $demo_dir/certbot --logs-dir $demo_dir/certbot

Inspect the token: $bin --config $config hsm check
MSG
if [ "$eab_required" = true ]; then
    cat <<MSG

External account binding is required (HSM_ACME_EAB_REQUIRED=1). With the server running,
make a key (the HMAC key is printed once; the token keeps it sealed):
  SOFTHSM2_CONF=$SOFTHSM2_CONF $bin --config $config eab create --profile default --reusable --json
and give certbot --eab-kid KID --eab-hmac-key KEY.
MSG
fi

if [ "$serve" = 1 ]; then
    echo "serving; stop with Ctrl-C" >&2
    exec "$bin" --config "$config" serve "$@"
fi
