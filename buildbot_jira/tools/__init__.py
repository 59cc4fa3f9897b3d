"""The ``buildbot-jira`` command: ``demo``, ``check`` and ``simulate``.

The tools use the plugin; the plugin never imports them.
"""
