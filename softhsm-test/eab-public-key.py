#!/usr/bin/env python3
"""Create an ACME account with a public-key external account binding (EAB).

The operator registers a public key and hands out the kid it prints:

    hsm-acme eab create --profile default --public-key eab-key.pub.pem

The client holds the matching private key (PEM, PKCS#8 or traditional; --eab-key) and
creates its account with newAccount (RFC 8555 section 7.3): a flattened JWS, posted as
application/jose+json, signed with the account key (a new EC P-256 key unless
--account-key names one):

    protected: {"alg": <account key's alg>, "jwk": <account JWK>,
                "nonce": <Replay-Nonce of HEAD newNonce>, "url": <newAccount URL>}
    payload:   {"termsOfServiceAgreed": true, "contact": [...] (with --contact only),
                "externalAccountBinding": <EAB>}

The EAB (RFC 8555 section 7.3.4, with a signature in place of the MAC) is itself a
flattened JWS {"protected", "payload", "signature"}:

    protected: exactly {"alg": <registered key's alg>, "kid": <kid>, "url": <newAccount URL>}
    payload:   the account's public JWK, the same object as the outer "jwk",
               e.g. {"crv": "P-256", "kty": "EC", "x": ..., "y": ...}
    signature: by the registered private key over ASCII(protected || "." || payload)

All three are base64url without padding. Algorithms: EC P-256 -> ES256, EC P-384 -> ES384
(signatures are raw r || s, each left-padded to 32 or 48 bytes, not DER), RSA of 2048 bits
or more -> RS256 (PKCS#1 v1.5, SHA-256), Ed25519 -> EdDSA.

The server answers 201 Created with the account URL in Location and the account as JSON;
this prints "account: <URL>" and "status: <status>". A refusal is an
application/problem+json document: its type and detail go to stderr, and the exit status is 1.
"""
import argparse
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

EC_ALGS = {"secp256r1": ("ES256", "P-256", 32, hashes.SHA256),
           "secp384r1": ("ES384", "P-384", 48, hashes.SHA384)}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def uint(n, size=None):
    return n.to_bytes(size or (n.bit_length() + 7) // 8, "big")


def jws_alg(key):
    """The JWS alg a private key signs with; raises ValueError for other keys."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in EC_ALGS:
        return EC_ALGS[key.curve.name][0]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError("use an EC P-256 or P-384, RSA (2048 bits or more) or Ed25519 key")


def public_jwk(key):
    """The public JWK of a private key (one that jws_alg accepts)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _, crv, size, _ = EC_ALGS[key.curve.name]
        pub = key.public_key().public_numbers()
        return {"crv": crv, "kty": "EC",
                "x": b64u(uint(pub.x, size)), "y": b64u(uint(pub.y, size))}
    if isinstance(key, rsa.RSAPrivateKey):
        pub = key.public_key().public_numbers()
        return {"e": b64u(uint(pub.e)), "kty": "RSA", "n": b64u(uint(pub.n))}
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}


def sign_jws(key, protected, payload):
    """A flattened JWS of `payload` (a JSON value) under `protected`, signed by `key`."""
    protected = {"alg": jws_alg(key), **protected}
    signing_input = b64u_json(protected) + "." + b64u_json(payload)
    data = signing_input.encode("ascii")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _, _, size, hash_type = EC_ALGS[key.curve.name]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_type())))
        signature = uint(r, size) + uint(s, size)
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(data)
    protected_b64, payload_b64 = signing_input.split(".")
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64u(signature)}


def external_account_binding(eab_key, kid, account_jwk, new_account_url):
    """The EAB object: the account's JWK signed by the registered key."""
    return sign_jws(eab_key, {"kid": kid, "url": new_account_url}, account_jwk)


def load_key(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    jws_alg(key)
    return key


def request(context, url, method="GET", body=None):
    headers = {"User-Agent": "eab-public-key.py"}
    if body is not None:
        headers["Content-Type"] = "application/jose+json"
        body = json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    return urllib.request.urlopen(req, context=context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True, help="the ACME directory URL")
    parser.add_argument("--kid", required=True, help="the kid of the registered public key")
    parser.add_argument("--eab-key", required=True, metavar="PEM",
                        help="the private key matching the registered public key")
    parser.add_argument("--account-key", metavar="PEM",
                        help="the account's private key (default: a new EC P-256 key)")
    parser.add_argument("--save-account-key", metavar="FILE",
                        help="write the account key here (PKCS#8 PEM, mode 0600)")
    parser.add_argument("--contact", action="append", metavar="mailto:...",
                        help="a contact URL; may be repeated")
    parser.add_argument("--ca-bundle", metavar="PEM", help="trust these CAs for TLS")
    args = parser.parse_args()

    try:
        context = ssl.create_default_context(cafile=args.ca_bundle)
        eab_key = load_key(args.eab_key)
        account_key = (load_key(args.account_key) if args.account_key
                       else ec.generate_private_key(ec.SECP256R1()))
    except (OSError, ValueError, TypeError) as e:
        sys.exit(f"error: {e}")
    if args.save_account_key:
        pem = account_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        fd = os.open(args.save_account_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    try:
        with request(context, args.directory) as resp:
            directory = json.load(resp)
        with request(context, directory["newNonce"], method="HEAD") as resp:
            nonce = resp.headers["Replay-Nonce"]
        url = directory["newAccount"]
        jwk = public_jwk(account_key)
        payload = {"termsOfServiceAgreed": True}
        if args.contact:
            payload["contact"] = args.contact
        payload["externalAccountBinding"] = external_account_binding(eab_key, args.kid, jwk, url)
        jws = sign_jws(account_key, {"jwk": jwk, "nonce": nonce, "url": url}, payload)
        with request(context, url, method="POST", body=jws) as resp:
            location, account = resp.headers["Location"], json.load(resp)
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            problem = json.loads(text)
            text = f"{problem['type']}: {problem.get('detail')}"
        except (ValueError, TypeError, KeyError):
            pass
        sys.exit(f"error: HTTP {e.code} {text}")
    except urllib.error.URLError as e:
        sys.exit(f"error: {e.reason}")
    print(f"account: {location}")
    print(f"status: {account.get('status')}")


if __name__ == "__main__":
    main()
