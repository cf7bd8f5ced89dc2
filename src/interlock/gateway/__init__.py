"""The gateway: the ASGI surface (webhook ingress, event API, REST API, metrics)."""
