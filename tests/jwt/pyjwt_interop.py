#!/usr/bin/env python3
"""Interoperability check of the server's access tokens with PyJWT, an independent JWT library.

Against a RUNNING example server it proves, in both directions:

* tokens the server signs (EdDSA, ES256 or RS256) verify with PyJWT through the public JWK Set
  fetched over HTTP (`jwt.PyJWKClient` on `/.well-known/jwks.json`), with the RFC 9068 header
  (`typ: at+jwt`, `kid` = the RFC 7638 thumbprint of the JWK) and the expected claims; the JWK Set
  is the same at the auth mount, cacheable, and has no private key members;
* tokens PyJWT signs with the server's private key file are accepted by `GET /api/protected`;
* forged or unfit tokens are refused with 401: no `kid`, an unknown `kid`, alg confusion (HS256
  keyed with the public key as PEM, raw bytes or JWK JSON), another key claiming the server's
  `kid`, another algorithm claiming it, `alg: none`, a tampered payload, an expired token (code
  `token_expired`), `typ: JWT`, and another audience.

With `--alg HS256` it only checks that the JWK Set is empty and the token's `kid` is `hs-…`.

Usage (the server started with AUTH_JWT_ALGORITHM=<alg> and AUTH_DATA_DIR=<dir>):

    python3 tests/jwt/pyjwt_interop.py --base-url http://127.0.0.1:PORT --alg EdDSA \
        --private-key <dir>/jwt-eddsa.pem
    python3 tests/jwt/pyjwt_interop.py --base-url http://127.0.0.1:PORT --alg HS256

Needs Python 3 and `pyjwt[crypto]` (PyJWT 2 and `cryptography`); otherwise only the standard
library. Prints one line per step and exits non-zero at the first failure. Run by
examples/server/tests/pyjwt.rs.
"""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PASSWORD = "violet-Kettle-93-orbit"
ASYMMETRIC = ("EdDSA", "ES256", "RS256")
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
# RFC 7638 §3.2: the required members of each key type, which the thumbprint hashes.
THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


def step(message: str) -> None:
    print(f"ok: {message}", flush=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def http(method: str, url: str, body=None, token: str | None = None):
    """(status, headers, body bytes) of one request; HTTP errors are returned, not raised."""
    data = None if body is None else compact_json(body)
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def error_code(body: bytes):
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Server:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")

    def register(self):
        """A fresh user: (access token, register response)."""
        username = f"pyjwt{secrets.token_hex(6)}"
        status, _, body = http("POST", f"{self.base}/api/auth/register", {"username": username, "password": PASSWORD})
        assert status == 201, f"register {username}: expected 201, got {status}: {body[:500]!r}"
        reply = json.loads(body)
        assert reply.get("token_type") == "Bearer", f"register: token_type is {reply.get('token_type')!r}"
        assert isinstance(reply.get("access_token"), str), f"register: no access_token in {reply!r}"
        assert reply.get("user", {}).get("username") == username, f"register: user is {reply.get('user')!r}"
        return reply["access_token"], reply

    def jwks(self, path: str):
        """The JWK Set at `path`, after checking its status, type and caching headers."""
        status, headers, body = http("GET", f"{self.base}{path}")
        assert status == 200, f"GET {path}: expected 200, got {status}: {body[:500]!r}"
        content_type = headers.get("Content-Type", "")
        assert content_type.startswith("application/json") or content_type.startswith("application/jwk-set+json"), (
            f"GET {path}: Content-Type is {content_type!r}"
        )
        cache_control = headers.get("Cache-Control", "")
        assert "max-age=" in cache_control, f"GET {path}: Cache-Control is {cache_control!r}, without max-age="
        document = json.loads(body)
        assert isinstance(document.get("keys"), list), f"GET {path}: no keys array in {document!r}"
        return document, body

    def protected(self, token: str):
        status, _, body = http("GET", f"{self.base}/api/protected", token=token)
        return status, body

    def expect_accepted(self, what: str, token: str, user_id: str) -> None:
        status, body = self.protected(token)
        assert status == 200, f"{what}: GET /api/protected expected 200, got {status}: {body[:500]!r}"
        reply = json.loads(body)
        assert reply.get("user_id") == user_id, f"{what}: /api/protected answered for {reply!r}, not {user_id}"
        step(f"{what}: GET /api/protected -> 200")

    def expect_refused(self, what: str, token: str, code: str = "unauthorized") -> None:
        status, body = self.protected(token)
        assert status == 401, f"{what}: GET /api/protected expected 401, got {status}: {body[:500]!r}"
        got = error_code(body)
        assert got == code, f"{what}: expected error code {code!r}, got {got!r}: {body[:500]!r}"
        step(f"{what}: GET /api/protected -> 401 {code}")


def hs256_checks(server: Server) -> None:
    token, reply = server.register()
    step(f"registered {reply['user']['username']}")
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == "HS256", f"HS256: header alg is {header.get('alg')!r}"
    assert header.get("typ") == "at+jwt", f"HS256: header typ is {header.get('typ')!r}"
    kid = header.get("kid")
    assert isinstance(kid, str) and kid.startswith("hs-"), f"HS256: header kid is {kid!r}, not hs-…"
    step(f"HS256 token header: typ at+jwt, kid {kid}")
    for path in ("/.well-known/jwks.json", "/api/auth/.well-known/jwks.json"):
        document, _ = server.jwks(path)
        assert document == {"keys": []}, f"HS256: GET {path} is {document!r}, not an empty key set"
        step(f"GET {path} is {{\"keys\":[]}} (the secret is never published)")
    server.expect_accepted("the server's HS256 token", token, reply["user"]["id"])


def load_private_key(path: str, alg: str):
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    expected = {
        "EdDSA": ed25519.Ed25519PrivateKey,
        "ES256": ec.EllipticCurvePrivateKey,
        "RS256": rsa.RSAPrivateKey,
    }[alg]
    assert isinstance(key, expected), f"{path}: a {type(key).__name__}, not a key for {alg}"
    if alg == "ES256":
        assert isinstance(key.curve, ec.SECP256R1), f"{path}: curve {key.curve.name}, not P-256"
    return key


def generate_key(alg: str):
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def thumbprint(jwk: dict) -> str:
    members = THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = compact_json({m: jwk[m] for m in members})  # keys already in lexicographic order
    return b64url(hashlib.sha256(canonical).digest())


def hand_made(header: dict, claims: dict, sign) -> str:
    """header.payload.signature with `sign(signing input bytes) -> signature bytes`."""
    signing_input = f"{b64url(compact_json(header))}.{b64url(compact_json(claims))}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def hs256_with(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def confusion_secrets(alg: str, public_key, jwk: dict, jwks_body: bytes):
    """HMAC secrets an attacker would try in an HS256 alg-confusion attack on the public key."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    found = [
        ("the SubjectPublicKeyInfo PEM", pem),
        ("the SubjectPublicKeyInfo PEM without its final newline", pem.rstrip(b"\n")),
        ("the SubjectPublicKeyInfo DER", spki_der(public_key)),
        ("the JWK JSON text", compact_json(jwk)),
        ("the JWK JSON text with spaces", json.dumps(jwk).encode()),
        ("the JWK Set document as served", jwks_body),
    ]
    if alg == "EdDSA":
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        found.append(("the raw Ed25519 public key", raw))
    elif alg == "ES256":
        point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        found.append(("the uncompressed P-256 point", point))
    else:
        pkcs1 = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        found.append(("the PKCS#1 RSA PUBLIC KEY PEM", pkcs1))
    return found


def asymmetric_checks(server: Server, alg: str, private_key_path: str) -> None:
    private_key = load_private_key(private_key_path, alg)
    step(f"loaded the {alg} private key {private_key_path}")

    # 1. A fresh user and the server's token.
    token, reply = server.register()
    user_id = reply["user"]["id"]
    step(f"registered {reply['user']['username']} ({user_id})")
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == alg, f"the server's token header alg is {header.get('alg')!r}, not {alg}"

    # 2. The JWK Set over HTTP, and the server's token verified by PyJWT through it.
    jwks, jwks_body = server.jwks("/.well-known/jwks.json")
    mounted, _ = server.jwks("/api/auth/.well-known/jwks.json")
    assert mounted == jwks, f"the JWK Sets differ:\n/.well-known: {jwks!r}\n/api/auth/.well-known: {mounted!r}"
    step(f"GET /.well-known/jwks.json and /api/auth/.well-known/jwks.json: the same {len(jwks['keys'])} key(s), "
         f"cacheable")
    for key in jwks["keys"]:
        private = [m for m in PRIVATE_JWK_MEMBERS if m in key]
        assert not private, f"JWK {key.get('kid')!r} publishes private members {private}: {key!r}"
        assert key.get("use") == "sig", f"JWK {key.get('kid')!r}: use is {key.get('use')!r}, not sig"
        assert key.get("kid") == thumbprint(key), (
            f"JWK kid {key.get('kid')!r} is not its RFC 7638 thumbprint {thumbprint(key)!r}"
        )
    step("no JWK has private members (d, p, q, dp, dq, qi, oth, k); each kid is its RFC 7638 thumbprint")

    client = jwt.PyJWKClient(f"{server.base}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(token)
    kid = header.get("kid")
    assert kid == signing_key.key_id, f"the token's kid {kid!r} is not the JWK's {signing_key.key_id!r}"
    jwk = next(k for k in jwks["keys"] if k.get("kid") == kid)
    assert jwk.get("alg") == alg, f"JWK {kid}: alg is {jwk.get('alg')!r}, not {alg}"
    assert spki_der(signing_key.key) == spki_der(private_key.public_key()), (
        f"the JWK {kid} is not the public half of {private_key_path}"
    )
    step(f"PyJWKClient found the signing key {kid}, the public half of the private key file")

    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        audience="api",
        issuer="auth",
        options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
    )
    assert header.get("typ") == "at+jwt", f"the server's token header typ is {header.get('typ')!r}, not at+jwt"
    for claim in ("sub", "sid", "role", "jti"):
        assert claims.get(claim), f"the server's token has no {claim!r} claim: {claims!r}"
    assert claims["sub"] == user_id, f"sub is {claims['sub']!r}, the user is {user_id!r}"
    assert claims["role"] == "user", f"role is {claims['role']!r}, not user"
    uuid.UUID(claims["sid"])
    step(f"PyJWT verified the server's token: typ at+jwt, kid {kid}, sub, sid, role {claims['role']}, "
         f"amr {claims.get('amr')}")
    server.expect_accepted("the server's own token", token, user_id)

    # 3. A token PyJWT signs with the server's private key.
    def our_claims(**changes):
        now = int(time.time())
        made = {
            "sub": claims["sub"],
            "sid": claims["sid"],
            "role": claims["role"],
            "iss": claims["iss"],
            "aud": claims["aud"],
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        if "amr" in claims:
            made["amr"] = claims["amr"]
        made.update(changes)
        return made

    at_jwt = {"typ": "at+jwt", "kid": kid}
    ours = jwt.encode(our_claims(), private_key, algorithm=alg, headers=at_jwt)
    assert jwt.get_unverified_header(ours) == {"alg": alg, "typ": "at+jwt", "kid": kid}, (
        f"PyJWT made the header {jwt.get_unverified_header(ours)!r}"
    )
    jwt.decode(ours, signing_key.key, algorithms=[alg], audience="api", issuer="auth")
    server.expect_accepted(f"a PyJWT {alg} token signed with the server's key", ours, user_id)

    # 4. Tokens the server must refuse.
    server.expect_refused("(a) the PyJWT token without kid",
                          jwt.encode(our_claims(), private_key, algorithm=alg, headers={"typ": "at+jwt"}))
    server.expect_refused("(b) kid unknown-kid",
                          jwt.encode(our_claims(), private_key, algorithm=alg,
                                     headers={"typ": "at+jwt", "kid": "unknown-kid"}))
    public_key = private_key.public_key()
    for label, secret in confusion_secrets(alg, public_key, jwk, jwks_body):
        forged = hand_made({"alg": "HS256", "typ": "at+jwt", "kid": kid}, our_claims(), hs256_with(secret))
        server.expect_refused(f"(c) alg confusion: HS256 with the server's kid keyed by {label}", forged)
    stranger = generate_key(alg)
    server.expect_refused(f"(d) a fresh {alg} key claiming the server's kid",
                          jwt.encode(our_claims(), stranger, algorithm=alg, headers=at_jwt))
    now = int(time.time())
    server.expect_refused("(e) exp 10 minutes ago",
                          jwt.encode(our_claims(iat=now - 900, nbf=now - 900, exp=now - 600), private_key,
                                     algorithm=alg, headers=at_jwt),
                          code="token_expired")
    server.expect_refused("(f) typ JWT instead of at+jwt",
                          jwt.encode(our_claims(), private_key, algorithm=alg, headers={"typ": "JWT", "kid": kid}))
    server.expect_refused("(g) aud other",
                          jwt.encode(our_claims(aud="other"), private_key, algorithm=alg, headers=at_jwt))
    # Beyond the list: the key's algorithm is pinned, `none` is never accepted, and the signature
    # covers the payload.
    for other in ASYMMETRIC:
        if other != alg:
            server.expect_refused(f"(h) an {other} token claiming the server's {alg} kid",
                                  jwt.encode(our_claims(), generate_key(other), algorithm=other, headers=at_jwt))
    server.expect_refused("(i) alg none with the server's kid",
                          hand_made({"alg": "none", "typ": "at+jwt", "kid": kid}, our_claims(), lambda _: b""))
    head, _, signature = ours.split(".")
    tampered = f"{head}.{b64url(compact_json(our_claims(role='admin')))}.{signature}"
    server.expect_refused("(j) the PyJWT token's payload changed to role admin", tampered)
    server.expect_accepted("the PyJWT token, still", ours, user_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="the running server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--alg", required=True, choices=ASYMMETRIC + ("HS256",),
                        help="the server's AUTH_JWT_ALGORITHM")
    parser.add_argument("--private-key", help="the server's PKCS#8 PEM signing key (not for HS256)")
    args = parser.parse_args()
    if not __debug__:
        parser.error("the checks are asserts: run without python -O")
    if args.alg != "HS256" and not args.private_key:
        parser.error(f"--private-key is needed with --alg {args.alg}")
    server = Server(args.base_url)
    print(f"PyJWT {jwt.__version__} against {server.base} ({args.alg})", flush=True)
    try:
        if args.alg == "HS256":
            hs256_checks(server)
        else:
            asymmetric_checks(server, args.alg, args.private_key)
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except jwt.PyJWTError as failure:  # PyJWT refused the server's token or its JWK Set
        print(f"FAILED: PyJWT: {type(failure).__name__}: {failure}", file=sys.stderr, flush=True)
        return 1
    print(f"all PyJWT interoperability checks passed ({args.alg})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
