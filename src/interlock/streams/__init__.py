"""Stream sources and sinks: events that already flow through a broker.

    from interlock.streams import nats

    orders = app.stream("orders", nats.source(stream="ORDERS", subject="orders.>",
                                              durable="interlock-orders"))

    @orders.maps("orders.created")
    def order_created(body: dict[str, Any]) -> OrderCreated: ...

The seam (:mod:`~interlock.streams.base`) is two small protocols:
:class:`StreamSource` (connect, fetch a batch, ack / nak / reject messages,
close) and :class:`StreamSink` (publish with a de-duplication id). The
:class:`~interlock.streams.runner.StreamRunner` drives a source: it stores each
batch durably, and only then settles its messages. ``interlock run`` and
``interlock worker`` run every declared stream (``--no-streams`` turns them off).

Modules: ``base`` (the protocols and :class:`Message`), ``stream`` (the
declaration and its mappings), ``intake`` (messages to events or rejection
records), ``runner`` (the loop), ``metrics``, ``forward`` (a flow that
publishes events to a sink), ``nats`` (JetStream), ``memory`` (an in-memory
source with broker semantics, for tests).
"""

from interlock.streams.base import Message, Published, StreamSink, StreamSource
from interlock.streams.forward import forward
from interlock.streams.intake import StreamRejected
from interlock.streams.metrics import stream_metrics
from interlock.streams.runner import StreamRunner, run_streams
from interlock.streams.stream import Stream

__all__ = [
    "Message",
    "Published",
    "Stream",
    "StreamRejected",
    "StreamRunner",
    "StreamSink",
    "StreamSource",
    "forward",
    "run_streams",
    "stream_metrics",
]
