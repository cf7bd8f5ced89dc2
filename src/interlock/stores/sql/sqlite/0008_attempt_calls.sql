-- interlock schema v8 (SQLite): the connector calls each attempt made.

-- JSON list of interlock.connectors.calls.CallRecord (method, path, status, duration,
-- idempotency key, the step that made it); NULL when the run made no connector call.
ALTER TABLE attempts ADD COLUMN calls TEXT;
