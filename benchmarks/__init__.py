"""Benchmarks of buildbot-jira against a real Buildbot master: run each module as a script.

``burst.py`` counts the requests that builds released together cost, the
answers of 429 under a burst limit and the delay from a build's end to Jira;
``cost.py`` measures what the reporter adds to each build on the master. See
``benchmarks/README.rst``.
"""
