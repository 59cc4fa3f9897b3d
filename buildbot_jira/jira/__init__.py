"""The wire to Jira Software Cloud: value classes, client, OAuth tokens, HTTP.

Nothing here knows Buildbot: :mod:`~buildbot_jira.jira.model` holds the
value classes and the contract's limits (pure),
:mod:`~buildbot_jira.jira.client` the client of the four DevOps APIs,
:mod:`~buildbot_jira.jira.results` what Jira answers, parsed,
:mod:`~buildbot_jira.jira.retry` how patiently a request is retried,
:mod:`~buildbot_jira.jira.auth` the OAuth token cache,
:mod:`~buildbot_jira.jira.http` the transport and
:mod:`~buildbot_jira.jira.errors` the errors they raise, each saying what it
means for the caller.
"""
