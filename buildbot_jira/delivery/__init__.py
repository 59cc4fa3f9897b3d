"""Delivery: the durable outbox that carries updates to Jira in the background."""
