"""``stream_app``'s app for the real CLI: ``interlock worker cli_app:app`` (settings from the
``STREAM_*`` environment variables, as the script takes them)."""

from __future__ import annotations

import os

from stream_app import build_app  # imported from this folder, as the CLI does

app = build_app(
    None,
    nats_url=os.environ["STREAM_NATS_URL"],
    stream=os.environ["STREAM_NAME"],
    prefix=os.environ["STREAM_PREFIX"],
    batch=int(os.environ.get("STREAM_BATCH", "20")),
    ack_wait=float(os.environ.get("STREAM_ACK_WAIT", "30")),
)
