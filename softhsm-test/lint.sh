#!/bin/sh
# lint.sh --leaf LEAF.pem --issuing ISSUING.pem --root ROOT.pem [--crl CRL.der]...
#         [--arl ROOT-CRL.der]... [--allow-host H]
#
# Lints certificates and CRLs with pkilint (the CA/Browser Forum TLS profile for
# certificates, the BR profile for CRLs), installed into a virtualenv under
# ~/.cache/hsm-acme on first use. Fails on any FATAL, ERROR or WARNING finding.
#
# --allow-host H tolerates exactly one finding: cabf.internal_domain_name for host H in a
# CRL distribution point or caIssuers URL. A demo publishes its CRLs on 127.0.0.1, which
# is right for a machine-local CA and cannot be a public name.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

venv=${HSM_ACME_PKILINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hsm-acme/pkilint-venv}
if [ ! -x "$venv/bin/lint_cabf_serverauth_cert" ]; then
    ensure_packages python3-venv python3-pip
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "pkilint==0.13.3"
fi

leaf="" issuing="" root="" crls="" arls="" allow=""
while [ $# -gt 0 ]; do
    case $1 in
        --leaf) leaf=$2 ;;
        --issuing) issuing=$2 ;;
        --root) root=$2 ;;
        --crl) crls="$crls $2" ;;
        --arl) arls="$arls $2" ;;
        --allow-host) allow=$2 ;;
        *) echo "lint.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift 2
done

failed=0
# check WHAT FINDINGS: prints the findings and counts those that are not allowed.
check() {
    what=$1 findings=$2
    bad=$(printf '%s\n' "$findings" | grep -E '\((FATAL|ERROR|WARNING)\)' |
        { if [ -n "$allow" ]; then
              grep -v -F "cabf.internal_domain_name (ERROR): Internal domain name: \"$allow\""
          else cat; fi; } || true)
    if [ -n "$bad" ]; then
        echo "lint: $what: FAILED"
        printf '%s\n' "$findings"
        failed=1
    else
        echo "lint: $what: clean"
    fi
}

cabf() { "$venv/bin/lint_cabf_serverauth_cert" lint "$@" 2>&1 || true; }
[ -n "$leaf" ] && check "subscriber certificate $leaf" "$(cabf -d "$leaf")"
[ -n "$issuing" ] && check "issuing CA certificate $issuing" "$(cabf -d "$issuing")"
[ -n "$root" ] && check "root CA certificate $root" "$(cabf -t ROOT-CA "$root")"
for crl in $crls; do
    check "CRL $crl" "$("$venv/bin/lint_crl" lint -t CRL -p BR "$crl" 2>&1 || true)"
done
for arl in $arls; do
    check "CA CRL $arl" "$("$venv/bin/lint_crl" lint -t ARL -p BR "$arl" 2>&1 || true)"
done
exit $failed
