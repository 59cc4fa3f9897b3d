"""Delivery: the durable outbox that carries updates to Jira in the background.

- :mod:`~buildbot_jira.delivery.ledger`: which update of each entity waits,
  goes or is forgotten (pure);
- :mod:`~buildbot_jira.delivery.backoff`: how long to wait after a failure (pure);
- :mod:`~buildbot_jira.delivery.store`: where updates are saved (the master's
  database);
- :mod:`~buildbot_jira.delivery.outbox`: the Twisted driver of the three;
- :mod:`~buildbot_jira.delivery.testing`: an in-memory Jira for tests.
"""
