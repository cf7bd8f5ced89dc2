from __future__ import annotations

from interlock.redaction import MASK, Redactor, redact_payload, sensitive_values

PAYLOAD = {
    "order_id": "1042",
    "email": "jane@acme.test",
    "phone": None,
    "customer": {"name": "Jane Doe", "city": "Lyon"},
    "previous": [{"street": "1 Rue Royale", "city": "Paris"}, {"street": "2 Quai", "city": "Nice"}],
}
PATHS = [("email",), ("phone",), ("customer", "name"), ("previous", "street"), ("missing", "x")]


def test_redact_payload_masks_pii_paths_in_a_copy() -> None:
    masked = redact_payload(PAYLOAD, PATHS)
    assert masked == {
        "order_id": "1042",
        "email": MASK,
        "phone": None,  # nothing to hide
        "customer": {"name": MASK, "city": "Lyon"},
        "previous": [{"street": MASK, "city": "Paris"}, {"street": MASK, "city": "Nice"}],
    }
    assert PAYLOAD["email"] == "jane@acme.test", "the original is untouched"
    assert PAYLOAD["previous"][0]["street"] == "1 Rue Royale"


def test_redact_payload_masks_a_whole_nested_value() -> None:
    masked = redact_payload({"customer": {"name": "x", "tags": ["a"]}}, [("customer",)])
    assert masked == {"customer": MASK}


def test_sensitive_values_collects_the_strings_to_scrub() -> None:
    values = sensitive_values(PAYLOAD, PATHS)
    assert sorted(values) == ["1 Rue Royale", "2 Quai", "Jane Doe", "jane@acme.test"]
    nested = sensitive_values({"c": {"a": "secret-1", "b": ["secret-2", 12345]}}, [("c",)])
    assert sorted(nested) == ["12345", "secret-1", "secret-2"]


def test_redactor_scrubs_values_out_of_free_text() -> None:
    redactor = Redactor(["jane@acme.test", "Jane Doe"])
    text = "no user jane@acme.test (Jane Doe) in CRM; retry jane@acme.test"
    assert redactor.text(text) == f"no user {MASK} ({MASK}) in CRM; retry {MASK}"
    assert redactor.text("nothing sensitive") == "nothing sensitive"


def test_redactor_masks_the_longest_value_whole() -> None:
    redactor = Redactor(["jane", "jane@acme.test"])
    assert redactor.text("to jane@acme.test") == f"to {MASK}"


def test_redactor_ignores_values_too_short_to_scrub_safely() -> None:
    redactor = Redactor(["a", "42"])
    assert not redactor
    assert redactor.text("a 42 answer") == "a 42 answer"


def test_redactor_walks_structures() -> None:
    redactor = Redactor(["jane@acme.test"])
    value = {"msg": "hi jane@acme.test", "list": ["jane@acme.test", 3], "n": None}
    assert redactor.value(value) == {"msg": f"hi {MASK}", "list": [MASK, 3], "n": None}
