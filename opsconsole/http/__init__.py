"""The request's way in and out: request context and ids, the error envelope, body and input
limits, parsers, pagination, the API schema, idempotency keys, content security and logs."""
