"""Pure mapping: a Buildbot build snapshot in, Jira values out.

:mod:`~buildbot_jira.mapping.keys` finds issue keys in text (with the rules
of :mod:`~buildbot_jira.mapping.key_rules` and the scanner of
:mod:`~buildbot_jira.mapping.key_scanner`), :mod:`~buildbot_jira.mapping.builds`
maps a build to a Jira build and :mod:`~buildbot_jira.mapping.deployments`
to a Jira deployment. No reactor, no I/O: plain data in, plain data out
(``tests/test_pure_core.py`` holds the package to that).
"""
