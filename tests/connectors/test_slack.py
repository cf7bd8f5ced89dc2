"""The Slack connector against the Slack simulator: chat.postMessage, conversations.list and
auth.test; ``ok: false`` answers classified by Slack's error code; per-method tiers and
per-channel buckets; Retry-After on 429; rotating tokens refreshed on token_expired; schema
drift; dry-run in Slack's shapes; the probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from interlock.connectors import Rate, Slack, Timeouts, check
from interlock.connectors.calls import Call
from interlock.errors import (
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import SlackSimulator, Vendors, run


@pytest.fixture(scope="module")
def served_slack() -> Iterator[Vendors]:
    with run(("slack",)) as vendors:
        yield vendors


@pytest.fixture
def sim(served_slack: Vendors, monkeypatch: pytest.MonkeyPatch) -> SlackSimulator:
    served_slack.reset()
    sim = served_slack.slack
    monkeypatch.setenv("INTERLOCK_SECRET_SLACK_BOT_TOKEN", sim.credentials["bot_token"])
    monkeypatch.setenv("INTERLOCK_SECRET_SLACK_CLIENT_SECRET", sim.credentials["client_secret"])
    monkeypatch.setenv("INTERLOCK_SECRET_SLACK_REFRESH_TOKEN", sim.credentials["refresh_token"])
    return sim


@pytest.fixture
async def slack(sim: SlackSimulator) -> AsyncIterator[Slack]:
    connector = Slack(base_url=sim.url, timeouts=Timeouts(total="0.3s"))
    yield connector
    await connector.aclose()


async def test_posts_channels_and_identity(slack: Slack, sim: SlackSimulator) -> None:
    posted = await slack.post_message("#alerts", "Payment pi_1 failed")
    assert (posted.channel, posted.text) == ("C003SANDBOX", "Payment pi_1 failed")
    reply = await slack.post_message(
        posted.channel,
        "Refunded",
        thread_ts=posted.ts,
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Refunded*"}}],
    )
    assert reply.thread_ts == posted.ts and reply.model_extra is not None
    assert reply.model_extra["blocks"][0]["type"] == "section"
    sent = sim.requests.matching("POST", "/api/chat.postMessage")[0]
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    assert sent.headers["authorization"] == "Bearer xoxb-sandbox"
    assert "warning" not in sent.response_json()
    assert [m["text"] for m in sim.state["messages"].values()] == [
        "Payment pi_1 failed",
        "Refunded",
    ]

    # conversations.list is tier 2 (20 a minute): five calls fit in its burst
    slack.page_size = 2
    channels = await slack.list_channels()
    assert [c.name for c in channels] == ["general", "random", "alerts", "revops", "design"]
    assert len(sim.requests.matching("GET", "/api/conversations.list")) == 3
    slack.page_size = 200
    found = await slack.find_channel("#revops")
    assert found is not None and (found.is_private, found.is_member) == (True, True)
    archived = await slack.find_channel("old-launch")
    assert archived is not None and archived.is_archived
    assert len(sim.requests.matching("GET", "/api/conversations.list")) == 5
    me = await slack.auth_test()
    assert (me.team_id, me.user_id, me.bot_id) == ("T0SANDBOX", "U0SANDBOXBOT", "B0SANDBOXBOT")
    assert (await slack.call("auth.test", read=True))["ok"] is True


async def test_ok_false_answers_are_classified_by_slacks_error(
    slack: Slack, sim: SlackSimulator
) -> None:
    with pytest.raises(ResourceNotFound, match="200: channel_not_found") as nf:
        await slack.post_message("#nowhere", "hi")
    assert (nf.value.status, nf.value.code, nf.value.operation) == (
        200,
        "channel_not_found",
        "chat.postMessage",
    )
    for channel, text, code in (
        ("#design", "hi", "not_in_channel"),
        ("#old-launch", "hi", "is_archived"),
        ("#general", None, "no_text"),
        ("#general", "x" * 40001, "msg_too_long"),
    ):
        with pytest.raises(VendorRejected) as rejected:
            await slack.post_message(channel, text)
        assert rejected.value.code == code
    with pytest.raises(VendorRejected, match="invalid_cursor"):
        await slack.call("conversations.list", {"cursor": "bogus"}, read=True)
    with pytest.raises(VendorRejected, match="404: unknown_method"):
        await slack.call("chat.scheduleMessage", {"channel": "C1"})
    sim.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied, match="403"):
        await slack.auth_test()
    sim.faults.fail(1, status=500)
    with pytest.raises(VendorUnavailable, match="500: internal_error"):
        await slack.auth_test()
    sim.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await slack.auth_test()
    sim.faults.timeout(1, hold=1.0)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await slack.auth_test()
    sim.faults.rate_limit(1, retry_after=2)
    with pytest.raises(RateLimited) as limited:
        await slack.auth_test()
    assert limited.value.retry_after == 2.0
    assert slack.runtime.metrics.calls[("slack", "chat.postMessage", "permanent")] == 4


async def test_a_bad_token_is_permission_denied(
    sim: SlackSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_OLD_TOKEN", "xoxb-revoked-0000")
    slack = Slack(token="old-token", base_url=sim.url)
    try:
        with pytest.raises(PermissionDenied, match="200: invalid_auth") as denied:
            await slack.post_message("#general", "hi")
        assert "xoxb-revoked-0000" not in str(denied.value)
        assert len(sim.requests) == 1, "not retried: a static token cannot be refreshed"
        (result,) = await check(slack)
        assert (result.ok, result.auth) == (False, "denied")
    finally:
        await slack.aclose()


def test_tiers_and_per_channel_buckets() -> None:
    slack = Slack()

    def bucket(method: str, account: str | None = None) -> tuple[str, Rate] | None:
        return slack.rate_for(Call("POST", f"https://slack.com/api/{method}", method, account))

    assert bucket("auth.test") == ("slack:auth.test", Rate(80, per="1m", burst=20))
    assert bucket("conversations.list") == ("slack:conversations.list", Rate(15, per="1m", burst=5))
    assert bucket("chat.postMessage", "#alerts") == (
        "slack:chat.postMessage@#alerts",
        Rate(1, per="1s", burst=4),
    )
    assert bucket("reminders.add") == ("slack:reminders.add", Rate(40, per="1m", burst=10))
    request = httpx.Request("POST", "https://slack.com/api/chat.postMessage")
    scope = slack.vendor_error(
        httpx.Response(
            200,
            json={"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "x"},
            request=request,
        )
    )
    assert scope is not None and (scope.kind, scope.required_scope) == ("permission", "chat:write")


async def test_posts_to_one_channel_are_paced(slack: Slack, sim: SlackSimulator) -> None:
    started = slack.clock.now()
    for n in range(6):
        await slack.post_message("#general", f"message {n}")
    await slack.post_message("#random", "elsewhere: its own bucket")
    elapsed = slack.clock.now() - started
    assert 1.5 <= elapsed < 3.0, "a burst of four, then one a second"
    assert all(e.status == 200 for e in sim.requests.all())


async def test_rotating_tokens_are_refreshed_on_token_expired(sim: SlackSimulator) -> None:
    slack = Slack(base_url=sim.url, auth=Slack.oauth(client_id="1111111111.2222222222"))
    try:
        await slack.post_message("#general", "first")
        sim.faults.expire_tokens()
        await slack.post_message("#general", "second")  # token_expired → refresh → retried
    finally:
        await slack.aclose()
    posts = sim.requests.matching("POST", "/api/chat.postMessage")
    assert [p.response_json().get("error") for p in posts] == [None, "token_expired", None]
    assert posts[0].headers["authorization"].startswith("Bearer xoxe.xoxb-")
    assert len(sim.requests.matching("POST", "/api/oauth.v2.access")) == 2
    assert len(sim.state["messages"]) == 2


async def test_schema_drift_is_a_clear_contract_error(slack: Slack, sim: SlackSimulator) -> None:
    sim.faults.drift(rename={"is_private": "private"})
    assert (await slack.find_channel("revops")) is not None, "a renamed flag is tolerated"
    sim.faults.drift(rename={"ts": "timestamp"})
    with pytest.raises(VendorRejected, match=r"does not fit Message .*ts") as drifted:
        await slack.post_message("#general", "hi")
    assert drifted.value.code == "schema_mismatch"


async def test_dry_run_answers_in_slacks_shape(sim: SlackSimulator) -> None:
    dark = Slack(base_url=sim.url, dry_run=True)
    try:
        posted = await dark.post_message("#alerts", "dark", thread_ts="1.000001")
        assert (posted.channel, posted.text, posted.thread_ts) == ("#alerts", "dark", "1.000001")
        assert posted.ts.split(".")[0].isdigit()
        assert (await dark.auth_test()).team_id == "T0SANDBOX", "reads go through"
    finally:
        await dark.aclose()
    assert sim.state["messages"] == {}
    (record,) = dark.dry_runs
    assert record.body == {"channel": "#alerts", "text": "dark", "thread_ts": "1.000001"}
    assert record.answer["body"]["ok"] is True


async def test_the_probe_calls_auth_test(slack: Slack, sim: SlackSimulator) -> None:
    (result,) = await check(slack)
    assert (result.ok, result.probe, result.status) == (True, "auth", 200)
    assert sim.requests.last.path == "/api/auth.test"
