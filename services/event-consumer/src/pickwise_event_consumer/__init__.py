"""Pickwise event-consumer: Kafka consumers to Redis features and the Postgres event log; retry topics and DLQ."""
