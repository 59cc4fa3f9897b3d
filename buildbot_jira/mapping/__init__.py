"""Pure mapping: a Buildbot build snapshot in, Jira values out.

:mod:`~buildbot_jira.mapping.keys` finds issue keys in text,
:mod:`~buildbot_jira.mapping.builds` maps a build to a Jira build and
:mod:`~buildbot_jira.mapping.deployments` to a Jira deployment. No reactor,
no I/O: plain data in, plain data out.
"""
