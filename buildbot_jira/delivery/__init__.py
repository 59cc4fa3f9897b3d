"""Delivery: the durable outbox that carries updates to Jira in the background.

- :mod:`~buildbot_jira.delivery.ledger`: which update of each entity waits,
  goes or is forgotten, and which entities are open (pure);
- :mod:`~buildbot_jira.delivery.backoff`: how long to wait after a failure (pure);
- :mod:`~buildbot_jira.delivery.takeover` and
  :mod:`~buildbot_jira.delivery.interrupted`: rows read back after a restart
  or from a dead master, and the final states of what it left (pure);
- :mod:`~buildbot_jira.delivery.store`: rows per slot, written as they
  change; :mod:`~buildbot_jira.delivery.database`: in the master's database,
  with the claim that adopts a dead master's rows;
- :mod:`~buildbot_jira.delivery.durable`: the ledger whose changes reach the store;
- :mod:`~buildbot_jira.delivery.outbox`: the Twisted driver;
- :mod:`~buildbot_jira.delivery.testing`: an in-memory Jira for tests.
"""
