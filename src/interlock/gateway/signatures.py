"""Webhook signature schemes: is this request really from the vendor, and is it fresh?

Each scheme follows its vendor's published algorithm over the raw request bytes
(never re-serialised JSON) and compares in constant time. ``secrets`` holds one
secret, or two during a rotation (a signature made with either is accepted).
Every rejection is a :class:`SignatureError` with a machine ``reason``
(``missing_signature``, ``missing_header``, ``malformed_header``, ``bad_signature``,
``stale_timestamp``, ``future_timestamp``, ``no_secret``, ``invalid_secret``) and a
message that names headers, never a secret or an expected signature::

    verified = scheme("github").verify(body, request.headers, ["s3cret"], clock.now())

``secrets`` may also be :class:`Keys`: the same secrets prepared once (decoded,
HMAC keyed) for many requests, as the gateway's ingress keeps them per source.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

from interlock.errors import ConfigurationError, InterlockError

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # ASCII digits only: no sign, fraction or exponent
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_FIELD = re.compile(r"\{(body|timestamp)\}")
_Headers = dict[str, str | None]  # lower-cased names; None marks a repeated or non-text value


class SignatureError(InterlockError):
    """A webhook failed verification; ``reason`` is a stable machine-readable code."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified request told us: the vendor's delivery id and signed time, if any."""

    delivery_id: str | None = None
    timestamp: float | None = None


class Keys:
    """Secrets prepared for verifying many requests: decoded and HMAC-keyed once.

    Give it wherever a verifier takes ``secrets``. Each scheme's keys (UTF-8 bytes,
    or a ``whsec_`` secret's base64-decoded tail) are keyed into an HMAC on first use
    and copied for each request; a secret that cannot be used fails at the same point,
    with the same error, as when given as strings. Build a new ``Keys`` when the
    values change (:attr:`secrets` holds them, to compare).
    """

    __slots__ = ("_prepared", "secrets")

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = secrets
        self._prepared: dict[tuple[str, bool], tuple[hmac.HMAC, ...] | SignatureError] = {}

    def macs(self, algorithm: str, *, whsec: bool = False) -> tuple[hmac.HMAC, ...]:
        """Keyed HMACs to copy, one per secret (see :func:`_keys`); raises its error."""
        prepared = self._prepared.get((algorithm, whsec))
        if prepared is None:
            try:
                keys = _keys(self.secrets, whsec=whsec)
            except SignatureError as exc:
                prepared = exc
            else:
                prepared = tuple(hmac.new(key, digestmod=algorithm) for key in keys)
            self._prepared[(algorithm, whsec)] = prepared
        if isinstance(prepared, SignatureError):
            raise SignatureError(str(prepared), reason=prepared.reason)
        return prepared


SecretValues = Sequence[str] | Keys


class Verifier(Protocol):
    """One signature scheme. ``headers`` may be any mapping; names are case-insensitive."""

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified: ...


# -- shared parsing ----------------------------------------------------------------------


def _lower(headers: Mapping[str, str]) -> _Headers:
    items: Iterable[tuple[object, object]] = headers.items()
    out: _Headers = {}
    for key, value in items:
        if isinstance(key, str):
            name, text = key.lower(), value if isinstance(value, str) else None
            out[name] = None if name in out and out[name] != text else text
    return out


def _find(h: _Headers, *names: str) -> str | None:
    """The first of ``names`` present, stripped; malformed if repeated, empty or non-ASCII."""
    for name in names:
        if name in h:
            value = (h[name] or "").strip(" \t")
            if not value or not value.isascii():
                raise _malformed(name, "is repeated, empty or not ASCII text")
            return value
    return None


def _get(h: _Headers, *names: str, reason: str = "missing_header") -> str:
    value = _find(h, *names)
    if value is None:
        raise SignatureError(f"the {names[0]} header is missing", reason=reason)
    return value


def _malformed(name: str, what: str) -> SignatureError:
    return SignatureError(f"the {name} header {what}", reason="malformed_header")


def _timestamp(value: str, name: str, now: float, tolerance: float) -> int:
    if not _TIMESTAMP.fullmatch(value):
        raise _malformed(name, "is not a whole number of seconds since the epoch")
    ts = int(value)
    skew = ts - now
    if not abs(skew) <= tolerance:  # written so that a NaN clock fails closed
        ahead = skew > 0
        raise SignatureError(
            f"the {name} header is {abs(skew):.0f} s {'ahead of' if ahead else 'behind'} the "
            f"server clock, past the {tolerance:g} s tolerance (a replay, or a wrong clock)",
            reason="future_timestamp" if ahead else "stale_timestamp",
        )
    return ts


def _decode(value: str, encoding: str) -> bytes | None:
    """Strict hex or padded standard base64; None when ``value`` is not that."""
    if encoding == "hex":
        return bytes.fromhex(value) if _HEX.fullmatch(value) else None
    return base64.b64decode(value) if value and _B64.fullmatch(value) else None


def _keys(secrets: Sequence[str], *, whsec: bool = False) -> list[bytes]:
    """The HMAC keys: each secret's UTF-8 bytes, or for ``whsec`` its base64-decoded tail."""
    if isinstance(secrets, str) or not secrets:
        raise SignatureError(
            "no webhook secret is configured for this source (give one, or two while rotating)",
            reason="no_secret",
        )
    keys: list[bytes] = []
    for i, secret in enumerate(secrets, 1):
        key = secret.encode() if isinstance(secret, str) else b""
        if whsec and key:
            raw = secret.removeprefix("whsec_")
            try:  # like the reference library, accept a secret whose padding was dropped
                key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except binascii.Error:
                key = b""
        if not key:
            shape = "'whsec_' followed by base64" if whsec else "a non-empty string"
            raise SignatureError(f"webhook secret #{i} is not {shape}", reason="invalid_secret")
        keys.append(key)
    return keys


def _macs(secrets: SecretValues, algorithm: str, *, whsec: bool = False) -> tuple[hmac.HMAC, ...]:
    """The keyed HMACs of ``secrets`` (prepared once when they are :class:`Keys`)."""
    keys = secrets if isinstance(secrets, Keys) else Keys(secrets)
    return keys.macs(algorithm, whsec=whsec)


def _check(macs: tuple[hmac.HMAC, ...], signed: Iterable[bytes], given: list[bytes]) -> None:
    """Pass when any given signature equals the MAC under any key (constant-time compare)."""
    parts = list(signed)
    for keyed in macs:
        mac = keyed.copy()
        for part in parts:  # no copy of the body: update piece by piece
            mac.update(part)
        expected = mac.digest()
        if any(hmac.compare_digest(expected, sig) for sig in given):
            return
    raise SignatureError(
        "no signature matches the body under the configured secret(s)", reason="bad_signature"
    )


def _check_tolerance(tolerance: object) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ConfigurationError(f"tolerance must be a number of seconds, got {tolerance!r}")
    if not 0 <= tolerance < float("inf"):
        raise ConfigurationError(f"tolerance must be finite and >= 0 seconds, got {tolerance!r}")


# -- the schemes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StandardWebhooks:
    """Standard Webhooks and Svix (``webhook-*`` or ``svix-*`` headers, ``whsec_`` secrets)::

    StandardWebhooks().verify(body, headers, ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], now)
    """

    tolerance: float = 300.0

    def __post_init__(self) -> None:
        _check_tolerance(self.tolerance)

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        h = _lower(headers)
        msg_id = _get(h, "webhook-id", "svix-id")
        raw_ts = _get(h, "webhook-timestamp", "svix-timestamp")
        header = _get(h, "webhook-signature", "svix-signature", reason="missing_signature")
        ts = _timestamp(raw_ts, "webhook-timestamp", now, self.tolerance)
        given: list[bytes] = []
        for entry in header.split():  # space-separated "v1,<base64>" entries
            version, comma, value = entry.partition(",")
            sig = _decode(value, "base64")
            if not comma or (version == "v1" and sig is None):
                raise _malformed("webhook-signature", "is not a list of 'v1,<base64>' entries")
            if version == "v1" and sig is not None:  # other versions (v1a) are not HMAC
                given.append(sig)
        if not given:
            raise SignatureError("webhook-signature has no v1 entry", reason="missing_signature")
        signed = (msg_id.encode(), b".", str(ts).encode(), b".", body)
        _check(_macs(secrets, "sha256", whsec=True), signed, given)
        return Verified(delivery_id=msg_id, timestamp=float(ts))


@dataclass(frozen=True, slots=True)
class Stripe:
    """Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``, keyed by the ``whsec_`` string::

    Stripe().verify(body, {"Stripe-Signature": "t=1700000000,v1=5257…"}, ["whsec_…"], now)
    """

    tolerance: float = 300.0

    def __post_init__(self) -> None:
        _check_tolerance(self.tolerance)

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        name = "stripe-signature"
        header = _get(_lower(headers), name, reason="missing_signature")
        stamps: list[str] = []
        given: list[bytes] = []
        for item in header.split(","):
            key, equals, value = item.strip().partition("=")
            sig = _decode(value, "hex")
            if not (key and equals) or (key == "v1" and sig is None):
                raise _malformed(name, "is not a list of t=<seconds> and v1=<hex> items")
            if key == "t":
                stamps.append(value)
            elif key == "v1" and sig is not None:  # v0 (test-mode legacy) and others: ignored
                given.append(sig)
        if len(stamps) != 1:
            raise _malformed(name, "does not have exactly one t= timestamp")
        ts = _timestamp(stamps[0], name, now, self.tolerance)
        if not given:
            raise SignatureError(f"the {name} header has no v1 item", reason="missing_signature")
        _check(_macs(secrets, "sha256"), (str(ts).encode(), b".", body), given)
        return Verified(delivery_id=None, timestamp=float(ts))


@dataclass(frozen=True, slots=True)
class GenericHmac:
    """Any vendor that sends ``prefix + encoding(HMAC(secret, signed_template))`` in one header.

    ``signed_template`` holds ``{body}`` once, and ``{timestamp}`` once exactly when
    ``timestamp_header`` is set; ``id_header`` names the vendor's delivery-id header::

        GenericHmac("X-Signature", "sha1", prefix="sha1=").verify(body, headers, [s], now)
    """

    header: str
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    signed_template: str = "{body}"
    id_header: str | None = None
    tolerance: float = 300.0
    _parts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _size: int = field(init=False, repr=False, compare=False)  # the digest's bytes

    def __post_init__(self) -> None:
        headers = [("header", self.header), ("timestamp_header", self.timestamp_header)]
        for label, value in [*headers, ("id_header", self.id_header)]:
            if (value is not None or label == "header") and not (
                isinstance(value, str) and _TOKEN.fullmatch(value)
            ):
                raise ConfigurationError(f"hmac {label} must be an HTTP header name, got {value!r}")
        if self.algorithm not in ("sha256", "sha1", "sha512"):
            raise ConfigurationError(
                f"hmac algorithm must be sha256, sha1 or sha512: {self.algorithm!r}"
            )
        if self.encoding not in ("hex", "base64"):
            raise ConfigurationError(f"hmac encoding must be hex or base64: {self.encoding!r}")
        if not (isinstance(self.prefix, str) and self.prefix.isascii()):
            raise ConfigurationError(f"hmac prefix must be ASCII text, got {self.prefix!r}")
        _check_tolerance(self.tolerance)
        template = self.signed_template
        parts = _FIELD.split(template) if isinstance(template, str) else ["{"]
        literals, names = parts[0::2], parts[1::2]  # re.split puts the captured names at odd places
        wanted = ["body", "timestamp"] if self.timestamp_header else ["body"]
        if sorted(names) != wanted or any("{" in x or "}" in x for x in literals):
            raise ConfigurationError(
                f"hmac signed_template {template!r} must hold {{body}} once"
                + (" and {timestamp} once" if self.timestamp_header else " and no other {field}")
            )
        object.__setattr__(self, "_parts", tuple(parts))
        object.__setattr__(self, "_size", hashlib.new(self.algorithm).digest_size)

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        h = _lower(headers)
        name = self.header.lower()
        header = _get(h, name, reason="missing_signature")
        values = {"body": body}
        ts: float | None = None
        if self.timestamp_header:
            ts_name = self.timestamp_header.lower()
            raw_ts = _get(h, ts_name)
            ts = float(_timestamp(raw_ts, ts_name, now, self.tolerance))
            values["timestamp"] = raw_ts.encode()  # signed as sent, like Slack's basestring
        sig = _decode(header.removeprefix(self.prefix), self.encoding)
        if not header.startswith(self.prefix) or sig is None or len(sig) != self._size:
            raise _malformed(name, f"is not {self.prefix!r} + one {self.encoding} signature")
        delivery_id = _find(h, self.id_header.lower()) if self.id_header else None
        signed = (values[p] if i % 2 else p.encode() for i, p in enumerate(self._parts))
        _check(_macs(secrets, self.algorithm), signed, [sig])
        return Verified(delivery_id=delivery_id, timestamp=ts)


_GITHUB = GenericHmac("X-Hub-Signature-256", prefix="sha256=", id_header="X-GitHub-Delivery")
_SHOPIFY = GenericHmac("X-Shopify-Hmac-Sha256", encoding="base64", id_header="X-Shopify-Webhook-Id")


@dataclass(frozen=True, slots=True)
class GitHub:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` of the body, id ``X-GitHub-Delivery``::

    GitHub().verify(body, {"X-Hub-Signature-256": "sha256=7571…"}, ["secret"], now)
    """

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        return _GITHUB.verify(body, headers, secrets, now)


@dataclass(frozen=True, slots=True)
class Shopify:
    """Shopify: ``X-Shopify-Hmac-Sha256: <base64>`` of the body, id ``X-Shopify-Webhook-Id``::

    Shopify().verify(body, {"X-Shopify-Hmac-Sha256": "Xr2…="}, ["client-secret"], now)
    """

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        return _SHOPIFY.verify(body, headers, secrets, now)


@dataclass(frozen=True, slots=True)
class Slack:
    """Slack: ``X-Slack-Signature: v0=<hex>`` of ``v0:{X-Slack-Request-Timestamp}:{body}``::

    Slack().verify(body, {"X-Slack-Signature": "v0=a2…", "X-Slack-Request-Timestamp": ts}, [k], now)
    """

    tolerance: float = 300.0
    _impl: GenericHmac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        impl = GenericHmac(
            "X-Slack-Signature",
            prefix="v0=",
            timestamp_header="X-Slack-Request-Timestamp",
            signed_template="v0:{timestamp}:{body}",
            tolerance=self.tolerance,
        )
        object.__setattr__(self, "_impl", impl)

    def verify(
        self, body: bytes, headers: Mapping[str, str], secrets: SecretValues, now: float
    ) -> Verified:
        return self._impl.verify(body, headers, secrets, now)


_Scheme = StandardWebhooks | Stripe | GitHub | Shopify | Slack | GenericHmac
_SCHEMES: dict[str, type[_Scheme]] = {
    "standard-webhooks": StandardWebhooks,
    "svix": StandardWebhooks,
    "stripe": Stripe,
    "github": GitHub,
    "shopify": Shopify,
    "slack": Slack,
    "hmac": GenericHmac,
}


def scheme(name: str, **options: Any) -> Verifier:
    """The verifier named ``name``, built with ``options`` (``hmac`` needs ``header=``)::

    scheme("hmac", header="X-Signature", algorithm="sha1", prefix="sha1=")
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    cls = _SCHEMES.get(key)
    if cls is None:
        known = ", ".join(sorted(_SCHEMES))
        raise ConfigurationError(f"unknown signature scheme {name!r}; known schemes: {known}")
    takes = [f.name for f in fields(cls) if f.init]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        hint = f"it takes {', '.join(takes)}" if takes else "it takes no options"
        raise ConfigurationError(f"signature scheme {key!r} has no option {unknown[0]!r}; {hint}")
    if cls is GenericHmac and "header" not in options:
        raise ConfigurationError("signature scheme 'hmac' needs header= (the signature's header)")
    return cls(**options)
