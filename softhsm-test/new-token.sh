#!/bin/sh
# new-token.sh DIR [LABEL]: a fresh SoftHSM token in DIR, for one test or benchmark.
#
# Creates DIR/softhsm2.conf (export it as SOFTHSM2_CONF), DIR/tokens/, and the test-only
# PINs in DIR/user-pin and DIR/so-pin (mode 0600). Never touches the system's tokens.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -ge 1 ] || { echo "usage: $0 DIR [LABEL]" >&2; exit 2; }
dir=$1
label=${2:-hsm-acme-test}
# Test-only PINs: these tokens hold throwaway keys.
user_pin=${HSM_ACME_TEST_USER_PIN:-test-user-1234}
so_pin=${HSM_ACME_TEST_SO_PIN:-test-so-12345678}

command -v softhsm2-util >/dev/null 2>&1 || ensure_packages softhsm2 opensc
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
new_token "$dir" "$label" "$user_pin" "$so_pin"
umask 077
printf '%s\n' "$user_pin" > "$dir/user-pin"
printf '%s\n' "$so_pin" > "$dir/so-pin"
echo "SOFTHSM2_CONF=$dir/softhsm2.conf"
