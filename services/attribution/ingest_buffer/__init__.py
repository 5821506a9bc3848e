"""The ingest buffer on NATS JetStream: events and orders accepted into a durable stream
(``broker``), written to the database by a consumer (``writer``), and how far behind it is
(``router``: ``GET /v1/ingest/lag``)."""
