"""Webhook signature schemes, checked against the vendors' own signing code.

Standard Webhooks, Svix and Stripe signatures come from the vendors' PyPI
libraries (``standardwebhooks``, ``svix``, ``stripe``); GitHub, Shopify and Slack
publish no Python signer, so their signatures are computed here from the
documented algorithm and pinned to the test vectors in the vendors' docs.
"""

from __future__ import annotations

import base64
import hmac
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
import standardwebhooks
import stripe
import svix.webhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.errors import ConfigurationError
from interlock.gateway.signatures import (
    GenericHmac,
    GitHub,
    Shopify,
    SignatureError,
    Slack,
    StandardWebhooks,
    Stripe,
    Verified,
    Verifier,
    scheme,
)

NOW = 1_700_000_000
BODY = '{"id": 1042, "type": "order.shipped", "note": "café ✓"}'.encode()
BINARY_BODY = b"\xff\xfe\x00 not UTF-8 \xc3\x28"
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W"

Signer = Callable[[bytes, str, int], dict[str, str]]  # (body, secret, timestamp) -> headers


def whsec(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, algorithm).digest()


# -- signers: the vendors' libraries, or the vendor's documented algorithm ----------------


def sign_standard_webhooks(body: bytes, secret: str, ts: int) -> dict[str, str]:
    when = datetime.fromtimestamp(ts, tz=UTC)
    signature = standardwebhooks.Webhook(secret).sign(MSG_ID, when, body.decode())
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def sign_svix(body: bytes, secret: str, ts: int) -> dict[str, str]:
    when = datetime.fromtimestamp(ts, tz=UTC)
    signature = svix.webhooks.Webhook(secret).sign(MSG_ID, when, body.decode())
    return {"svix-id": MSG_ID, "svix-timestamp": str(ts), "svix-signature": signature}


def sign_stripe(body: bytes, secret: str, ts: int) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=ts)
    return {"Stripe-Signature": header}


def standard_webhooks_spec(names: tuple[str, str, str]) -> Signer:
    """The spec: base64(HMAC-SHA256(b64decode(secret sans whsec_), f"{id}.{ts}.{body}"))."""

    def sign(body: bytes, secret: str, ts: int) -> dict[str, str]:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        mac = hmac_digest(key, f"{MSG_ID}.{ts}.".encode() + body)
        return dict(
            zip(names, (MSG_ID, str(ts), "v1," + base64.b64encode(mac).decode()), strict=True)
        )

    return sign


def stripe_spec(body: bytes, secret: str, ts: int) -> dict[str, str]:
    """Stripe's docs: hex(HMAC-SHA256(secret, f"{t}.{body}")), the whsec_ string as the key."""
    digest = hmac_digest(secret.encode(), f"{ts}.".encode() + body).hex()
    return {"Stripe-Signature": f"t={ts},v1={digest}"}


def github_spec(body: bytes, secret: str, ts: int) -> dict[str, str]:
    digest = hmac_digest(secret.encode(), body).hex()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": "72d3162e-cc78"}


def shopify_spec(body: bytes, secret: str, ts: int) -> dict[str, str]:
    digest = base64.b64encode(hmac_digest(secret.encode(), body)).decode()
    return {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Webhook-Id": "b54557e4-bdd9"}


def slack_spec(body: bytes, secret: str, ts: int) -> dict[str, str]:
    digest = hmac_digest(secret.encode(), f"v0:{ts}:".encode() + body).hex()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(ts)}


def acme_sha512(body: bytes, secret: str, ts: int) -> dict[str, str]:
    digest = hmac_digest(secret.encode(), f"{ts}.".encode() + body, "sha512")
    return {
        "X-Acme-Signature": "sha512=" + base64.b64encode(digest).decode(),
        "X-Acme-Timestamp": str(ts),
        "X-Acme-Delivery": "dlv_1",
    }


def acme_sha1(body: bytes, secret: str, ts: int) -> dict[str, str]:
    return {"X-Signature": hmac_digest(secret.encode(), body, "sha1").hex()}


@dataclass(frozen=True)
class Case:
    id: str
    verifier: Verifier
    sign: Signer  # the vendor's library where it has one
    spec: Signer  # the documented algorithm over bytes (the library signs text only)
    secret: str
    old_secret: str
    signature_header: str
    timestamp_header: str | None  # None: unsigned, or (Stripe) inside the signature header
    timed: bool
    delivery_id: str | None
    malformed: tuple[str, ...]  # signature header values of the wrong shape

    def signed(
        self, body: bytes = BODY, secret: str | None = None, ts: int = NOW
    ) -> dict[str, str]:
        return self.sign(body, secret or self.secret, ts)

    def verify(
        self, headers: Mapping[str, str], body: bytes = BODY, secrets: list[str] | None = None
    ) -> Verified:
        return self.verifier.verify(body, headers, secrets or [self.secret], NOW)

    def reject(
        self, headers: Mapping[str, str], body: bytes = BODY, secrets: list[str] | None = None
    ) -> SignatureError:
        with pytest.raises(SignatureError) as info:
            self.verify(headers, body, secrets)
        return info.value


HEX64 = "ab" * 32
SW_NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")
SVIX_NAMES = ("svix-id", "svix-timestamp", "svix-signature")
SW_MALFORMED = ("v1", "v1,not*base64", "v1,abc", "v1,YWJj v2", f"sha256={HEX64}")
CASES = [
    Case(
        id="standard-webhooks",
        verifier=StandardWebhooks(),
        sign=sign_standard_webhooks,
        spec=standard_webhooks_spec(SW_NAMES),
        secret=whsec(b"interlock-standard-webhooks-key!"),
        old_secret=whsec(b"previous-standard-webhooks-key"),
        signature_header="webhook-signature",
        timestamp_header="webhook-timestamp",
        timed=True,
        delivery_id=MSG_ID,
        malformed=SW_MALFORMED,
    ),
    Case(
        id="svix",
        verifier=scheme("svix"),
        sign=sign_svix,
        spec=standard_webhooks_spec(SVIX_NAMES),
        secret=whsec(b"interlock-svix-key-0123456789ab"),
        old_secret=whsec(b"previous-svix-key"),
        signature_header="svix-signature",
        timestamp_header="svix-timestamp",
        timed=True,
        delivery_id=MSG_ID,
        malformed=SW_MALFORMED,
    ),
    Case(
        id="stripe",
        verifier=Stripe(),
        sign=sign_stripe,
        spec=stripe_spec,
        secret="whsec_3Rk9sT7uVw1xYz2AbCdEfGhIjKlMnOp",
        old_secret="whsec_previousStripeSigningSecret00",
        signature_header="Stripe-Signature",
        timestamp_header=None,  # t= is inside Stripe-Signature
        timed=True,
        delivery_id=None,
        malformed=(
            f"v1={HEX64}",
            f"t={NOW},v1=zz",
            f"t={NOW},v1=abc",
            f"t=abc,v1={HEX64}",
            f"t=1.5,v1={HEX64}",
            f"t={NOW},t={NOW},v1={HEX64}",
            f"t={NOW},,v1={HEX64}",
            "garbage",
        ),
    ),
    Case(
        id="github",
        verifier=GitHub(),
        sign=github_spec,
        spec=github_spec,
        secret="It's a Secret to Everybody",
        old_secret="the previous secret",
        signature_header="X-Hub-Signature-256",
        timestamp_header=None,
        timed=False,
        delivery_id="72d3162e-cc78",
        malformed=(
            HEX64,
            f"sha1={'ab' * 20}",
            f"sha256={HEX64[:-2]}",
            f"sha256={'zz' * 32}",
            f"sha256={HEX64}, sha256={HEX64}",
        ),
    ),
    Case(
        id="shopify",
        verifier=Shopify(),
        sign=shopify_spec,
        spec=shopify_spec,
        secret="shpss_5e4c1cbd2e9c",
        old_secret="shpss_previous",
        signature_header="X-Shopify-Hmac-Sha256",
        timestamp_header=None,
        timed=False,
        delivery_id="b54557e4-bdd9",
        malformed=("not base64!", HEX64, base64.b64encode(b"x" * 20).decode(), "q83vEjRW=,q83v"),
    ),
    Case(
        id="slack",
        verifier=Slack(),
        sign=slack_spec,
        spec=slack_spec,
        secret="8f742231b10e8888abcd99yyyzzz85a5",
        old_secret="previous-slack-signing-secret",
        signature_header="X-Slack-Signature",
        timestamp_header="X-Slack-Request-Timestamp",
        timed=True,
        delivery_id=None,
        malformed=(HEX64, f"v1={HEX64}", f"v0={'zz' * 32}", f"v0={HEX64},v0={HEX64}"),
    ),
    Case(
        id="hmac-sha512-base64",
        verifier=GenericHmac(
            "X-Acme-Signature",
            "sha512",
            "base64",
            prefix="sha512=",
            timestamp_header="X-Acme-Timestamp",
            signed_template="{timestamp}.{body}",
            id_header="X-Acme-Delivery",
        ),
        sign=acme_sha512,
        spec=acme_sha512,
        secret="acme-secret",
        old_secret="acme-previous-secret",
        signature_header="X-Acme-Signature",
        timestamp_header="X-Acme-Timestamp",
        timed=True,
        delivery_id="dlv_1",
        malformed=(
            "sha512=",
            "sha256=" + base64.b64encode(b"x" * 64).decode(),
            "sha512=" + "A" * 86,
        ),
    ),
    Case(
        id="hmac-sha1-hex",
        verifier=scheme("hmac", header="X-Signature", algorithm="sha1"),
        sign=acme_sha1,
        spec=acme_sha1,
        secret="acme-secret",
        old_secret="acme-previous-secret",
        signature_header="X-Signature",
        timestamp_header=None,
        timed=False,
        delivery_id=None,
        malformed=("ab" * 32, "0x" + "ab" * 20, "ab" * 19 + "a"),
    ),
]
TIMED = [case for case in CASES if case.timed]
WITH_TIMESTAMP_HEADER = [case for case in CASES if case.timestamp_header]
by_id = pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)


def without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def replaced(headers: Mapping[str, str], name: str, value: str) -> dict[str, str]:
    return {**without(headers, name), name: value}


# -- accepted -------------------------------------------------------------------------------


@by_id
def test_a_valid_signature_is_accepted(case: Case) -> None:
    verified = case.verify(case.signed())
    assert verified == Verified(case.delivery_id, float(NOW) if case.timed else None)


@by_id
def test_header_names_are_case_insensitive_in_any_mapping(case: Case) -> None:
    headers = case.signed()
    assert (
        case.verify({k.upper(): v for k, v in headers.items()}).timestamp
        == case.verify(
            MappingProxyType({k.title(): f" {v}\t" for k, v in headers.items()})  # HTTP's OWS
        ).timestamp
    )


@by_id
def test_a_body_that_is_not_utf8_is_verified_as_bytes(case: Case) -> None:
    assert case.verify(case.spec(BINARY_BODY, case.secret, NOW), body=BINARY_BODY)
    tampered = case.spec(BINARY_BODY[:-1] + b"\x29", case.secret, NOW)
    assert case.reject(tampered, body=BINARY_BODY).reason == "bad_signature"


@pytest.mark.parametrize("case", [c for c in CASES if c.sign is not c.spec], ids=lambda c: c.id)
def test_the_documented_algorithm_matches_the_vendor_library(case: Case) -> None:
    assert case.spec(BODY, case.secret, NOW) == case.signed()


def test_published_test_vectors() -> None:
    # GitHub's "Validating webhook deliveries" example.
    digest = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    github = {"X-Hub-Signature-256": f"sha256={digest}"}
    assert GitHub().verify(b"Hello, World!", github, ["It's a Secret to Everybody"], 0)
    # Slack's "Verifying requests from Slack" walk-through.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
        b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d1"
        b"0d2c447fce8b6703c"
    )
    slack = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    assert Slack().verify(body, slack, ["8f742231b10e8888abcd99yyyzzz85a5"], 1531420618)
    # The Standard Webhooks / Svix example message.
    svix_headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    verified = StandardWebhooks().verify(
        b'{"test": 2432232314}', svix_headers, [secret], 1614265330
    )
    assert verified == Verified("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330.0)


# -- rejected -------------------------------------------------------------------------------


@by_id
def test_a_tampered_body_is_rejected(case: Case) -> None:
    headers = case.signed()
    assert case.reject(headers, body=BODY.replace(b"1042", b"1043")).reason == "bad_signature"
    assert case.reject(headers, body=BODY + b"\n").reason == "bad_signature"


@by_id
def test_a_wrong_secret_is_rejected(case: Case) -> None:
    assert case.reject(case.signed(secret=case.old_secret)).reason == "bad_signature"


@by_id
def test_a_missing_signature_header_is_rejected(case: Case) -> None:
    headers = without(case.signed(), case.signature_header)
    assert case.reject(headers).reason == "missing_signature"
    assert case.reject({}).reason in ("missing_signature", "missing_header")


@pytest.mark.parametrize("case", WITH_TIMESTAMP_HEADER, ids=lambda c: c.id)
def test_a_missing_timestamp_header_is_rejected(case: Case) -> None:
    assert case.timestamp_header
    headers = without(case.signed(), case.timestamp_header)
    assert case.reject(headers).reason == "missing_header"


def malformed_cases() -> Iterator[Any]:
    for case in CASES:
        for value in (*case.malformed, "", "   ", "v1,é", "sha256=ab\u00a0"):
            yield pytest.param(case, value, id=f"{case.id}:{value[:24]!r}")


@pytest.mark.parametrize(("case", "value"), list(malformed_cases()))
def test_a_malformed_signature_header_is_rejected(case: Case, value: str) -> None:
    headers = replaced(case.signed(), case.signature_header, value)
    assert case.reject(headers).reason == "malformed_header"


@pytest.mark.parametrize("case", WITH_TIMESTAMP_HEADER, ids=lambda c: c.id)
@pytest.mark.parametrize(
    "value", ["soon", "-1", "1700000000.0", "1e9", "\uff11\uff17\uff10\uff10", "9" * 40]
)
def test_a_malformed_timestamp_is_rejected(case: Case, value: str) -> None:
    assert case.timestamp_header
    headers = replaced(case.signed(), case.timestamp_header, value)
    assert case.reject(headers).reason == "malformed_header"


@pytest.mark.parametrize("case", TIMED, ids=lambda c: c.id)
@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-301, "stale_timestamp"), (-86_400, "stale_timestamp"), (301, "future_timestamp")],
)
def test_stale_and_future_timestamps_are_rejected(case: Case, offset: int, reason: str) -> None:
    error = case.reject(case.signed(ts=NOW + offset))
    assert error.reason == reason
    assert case.verify(case.signed(ts=NOW + offset // abs(offset) * 300))  # the edge is in


@pytest.mark.parametrize("name", ["standard-webhooks", "stripe", "slack"])
def test_the_tolerance_is_configurable_and_a_nan_clock_fails_closed(name: str) -> None:
    case = next(c for c in CASES if c.id == name)
    strict = scheme(name, tolerance=10)
    with pytest.raises(SignatureError, match="tolerance") as info:
        strict.verify(BODY, case.signed(ts=NOW - 11), [case.secret], NOW)
    assert info.value.reason == "stale_timestamp"
    assert strict.verify(BODY, case.signed(ts=NOW - 10), [case.secret], NOW)
    with pytest.raises(SignatureError):
        strict.verify(BODY, case.signed(), [case.secret], math.nan)


@pytest.mark.parametrize(
    ("case", "header"),
    [
        (CASES[0], "webhook-id"),
        (CASES[3], "X-GitHub-Delivery"),
        (CASES[4], "X-Shopify-Webhook-Id"),
        (CASES[6], "X-Acme-Delivery"),
    ],
    ids=lambda value: getattr(value, "id", value),
)
def test_a_delivery_id_that_is_not_ascii_is_rejected(case: Case, header: str) -> None:
    headers = replaced(
        case.signed(), header, "msg_\u00e9t\u00e9"
    )  # as latin-1 ASGI decoding shows UTF-8
    assert case.reject(headers).reason == "malformed_header"


def test_timestamps_are_signed_as_each_vendor_reference_code_does() -> None:
    # Standard Webhooks' and Stripe's libraries parse the timestamp and sign it as an integer...
    standard = CASES[0].signed()
    standard["webhook-timestamp"] = f"0{NOW}"
    assert CASES[0].verify(standard).timestamp == NOW
    # ...while Slack signs the X-Slack-Request-Timestamp header exactly as it was sent.
    slack = slack_spec(BODY, CASES[5].secret, NOW)
    assert CASES[5].reject({**slack, "X-Slack-Request-Timestamp": f"0{NOW}"}).reason == (
        "bad_signature"
    )
    digest = hmac_digest(CASES[5].secret.encode(), f"v0:0{NOW}:".encode() + BODY).hex()
    resent = {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": f"0{NOW}"}
    assert CASES[5].verify(resent).timestamp == NOW


@by_id
def test_repeated_headers_with_different_values_are_rejected(case: Case) -> None:
    headers = case.signed()
    value = headers[case.signature_header]
    pairs = [*headers.items(), (case.signature_header.upper(), value)]
    assert case.verify(RawHeaders(pairs)), "a repeat of the same value is harmless"
    other = case.signed(secret=case.old_secret)[case.signature_header]
    pairs[-1] = (case.signature_header.upper(), other)
    assert case.reject(RawHeaders(pairs)).reason == "malformed_header"


class RawHeaders(Mapping[str, str]):
    """Like Starlette's ``Headers``: ``items()`` keeps every raw pair, repeats included."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __getitem__(self, key: str) -> str:
        return next(v for k, v in self.pairs if k.lower() == key.lower())

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> Any:
        return list(self.pairs)


@by_id
def test_error_messages_name_no_secret_and_no_signature(case: Case) -> None:
    good = case.signed()
    errors = [
        case.reject(good, body=b"tampered"),
        case.reject(case.signed(secret=case.old_secret)),
        case.reject(good, secrets=[case.old_secret]),
    ]
    if case.timed:
        errors.append(case.reject(case.signed(ts=NOW - 3600)))
    signature = max(re.split(r"[=,]", good[case.signature_header]), key=len)
    for error in errors:
        for hidden in (case.secret, case.old_secret, signature, signature[:16]):
            assert hidden not in str(error)


# -- key rotation and several signatures -----------------------------------------------------


@by_id
@pytest.mark.parametrize("order", ["new-first", "old-first"])
def test_two_secrets_during_rotation_accept_either(case: Case, order: str) -> None:
    secrets = [case.secret, case.old_secret]
    if order == "old-first":
        secrets.reverse()
    assert case.verify(case.signed(secret=case.old_secret), secrets=secrets)
    assert case.verify(case.signed(secret=case.secret), secrets=secrets)
    stranger = case.signed(secret=whsec(b"neither-of-the-two-keys"))
    assert case.reject(stranger, secrets=secrets).reason == "bad_signature"


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.id)
def test_standard_webhooks_accepts_any_of_several_signatures(case: Case) -> None:
    name = case.signature_header
    new = case.signed()[name]
    old = case.signed(secret=case.old_secret)[name]
    asymmetric = "v1a," + base64.b64encode(b"e" * 64).decode()  # an ed25519 entry: skipped
    for listed in (f"{old} {new}", f"{new} {old}", f"{asymmetric} {old}  {new}"):
        assert case.verify(replaced(case.signed(), name, listed)).delivery_id == MSG_ID
    assert case.reject(replaced(case.signed(), name, f"{old} {asymmetric}")).reason == (
        "bad_signature"
    )
    assert case.reject(replaced(case.signed(), name, asymmetric)).reason == "missing_signature"


def test_stripe_accepts_any_of_several_v1_signatures_and_ignores_v0() -> None:
    case = CASES[2]
    new = case.signed()["Stripe-Signature"].split(",")[1]
    old = case.signed(secret=case.old_secret)["Stripe-Signature"].split(",")[1]
    v0 = f"v0={HEX64}"
    for header in (f"t={NOW},{old},{new}", f"{new},t={NOW},{v0},{old}", f"t={NOW}, {v0}, {new}"):
        assert case.verify({"Stripe-Signature": header}) == Verified(None, float(NOW))
        stripe.WebhookSignature.verify_header(BODY.decode(), header.replace(" ", ""), case.secret)
    assert case.reject({"Stripe-Signature": f"t={NOW},{old},{v0}"}).reason == "bad_signature"
    assert case.reject({"Stripe-Signature": f"t={NOW},{v0}"}).reason == "missing_signature"


# -- secrets and configuration -------------------------------------------------------------------


@by_id
@pytest.mark.parametrize(
    ("secrets", "reason"),
    [([], "no_secret"), ([""], "invalid_secret"), ([b"bytes, not text"], "invalid_secret")],
)
def test_missing_secrets_are_a_clear_signature_error(
    case: Case, secrets: list[Any], reason: str
) -> None:
    with pytest.raises(SignatureError) as info:
        case.verifier.verify(BODY, case.signed(), secrets, NOW)
    assert info.value.reason == reason
    with pytest.raises(SignatureError, match="no webhook secret"):
        case.verifier.verify(BODY, case.signed(), case.secret, NOW)  # a str, not a list


def test_standard_webhooks_secrets_must_be_base64_and_may_lack_padding() -> None:
    case = CASES[0]
    with pytest.raises(SignatureError, match="whsec_") as info:
        case.verify(case.signed(), secrets=["whsec_not*base64"])
    assert info.value.reason == "invalid_secret"
    unpadded = whsec(b"sixteen-byte-key").rstrip("=")
    assert unpadded != whsec(b"sixteen-byte-key")
    assert case.verify(case.signed(secret=unpadded), secrets=[unpadded])


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("standard-webhooks", StandardWebhooks),
        ("svix", StandardWebhooks),
        ("Standard_Webhooks", StandardWebhooks),
        ("stripe", Stripe),
        ("github", GitHub),
        ("shopify", Shopify),
        ("slack", Slack),
    ],
)
def test_scheme_resolves_names_and_aliases(name: str, kind: type[object]) -> None:
    assert type(scheme(name)) is kind


def test_scheme_builds_a_generic_hmac_from_options() -> None:
    built = scheme("hmac", header="X-Sig", algorithm="sha1", encoding="base64", prefix="s=")
    assert built == GenericHmac("X-Sig", "sha1", "base64", prefix="s=")


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("zapier", {}, "known schemes: github, hmac, shopify, slack, standard-webhooks, stripe"),
        ("github", {"tolerance": 60}, "'github' has no option 'tolerance'; it takes no options"),
        ("stripe", {"secret": "x"}, "'stripe' has no option 'secret'; it takes tolerance"),
        ("hmac", {}, "needs header="),
        ("stripe", {"tolerance": -1}, "tolerance must be finite and >= 0"),
        ("slack", {"tolerance": math.inf}, "tolerance must be finite"),
        ("svix", {"tolerance": math.nan}, "tolerance must be finite"),
        ("svix", {"tolerance": "300"}, "tolerance must be a number"),
        ("svix", {"tolerance": True}, "tolerance must be a number"),
        ("hmac", {"header": ""}, "hmac header must be an HTTP header name"),
        ("hmac", {"header": "X Sig"}, "hmac header must be an HTTP header name"),
        ("hmac", {"header": "X", "id_header": "é"}, "hmac id_header must be"),
        ("hmac", {"header": "X", "timestamp_header": ""}, "hmac timestamp_header must be"),
        ("hmac", {"header": "X", "algorithm": "md5"}, "algorithm must be sha256, sha1 or sha512"),
        ("hmac", {"header": "X", "encoding": "base32"}, "encoding must be hex or base64"),
        ("hmac", {"header": "X", "prefix": "é="}, "prefix must be ASCII"),
        ("hmac", {"header": "X", "signed_template": "{timestamp}.{body}"}, "{body} once"),
        ("hmac", {"header": "X", "signed_template": "{body}{body}"}, "{body} once"),
        ("hmac", {"header": "X", "signed_template": "{id}.{body}"}, "no other {field}"),
        ("hmac", {"header": "X", "signed_template": "{body:x}"}, "{body} once"),
        ("hmac", {"header": "X", "signed_template": "{body"}, "{body} once"),
        ("hmac", {"header": "X", "signed_template": b"{body}"}, "{body} once"),
        ("hmac", {"header": "X", "timestamp_header": "X-T"}, "and {timestamp} once"),
    ],
)
def test_bad_configuration_is_a_clear_configuration_error(
    name: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("{", r"\{").replace("}", r"\}")):
        scheme(name, **options)


# -- fuzz ----------------------------------------------------------------------------------------

REASONS = {
    "missing_signature",
    "missing_header",
    "malformed_header",
    "bad_signature",
    "stale_timestamp",
    "future_timestamp",
    "no_secret",
    "invalid_secret",
}
HEADER_NAMES = sorted({n for c in CASES for n in c.signed()} | {n.upper() for n in SW_NAMES})
header_values = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789abcdefABCDEF=,v1t ", max_size=140),
    st.sampled_from(["v1,", "t=1700000000,v1=", "sha256=", "v0=", str(NOW), "1" * 20]),
    st.builds(lambda a, b: a + b, st.sampled_from(["v1,", "sha256=", "v0="]), st.text()),
    st.binary(max_size=20),  # not text at all, as a careless caller might pass
    st.none(),
)


@by_id
@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=256),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=12), header_values),
    secrets=st.lists(st.text(max_size=40) | st.just("whsec_c2VjcmV0"), max_size=3),
    now=st.floats(allow_nan=True, allow_infinity=True) | st.just(float(NOW)),
)
def test_random_requests_raise_nothing_but_signature_error(
    case: Case, body: bytes, headers: dict[str, Any], secrets: list[str], now: float
) -> None:
    try:
        case.verifier.verify(body, headers, secrets, now)
    except SignatureError as error:
        outcome = error.reason
    else:
        outcome = "accepted"  # a random request that verifies would be a bug
    assert outcome in REASONS
