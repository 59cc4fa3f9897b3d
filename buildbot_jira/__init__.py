"""Report Buildbot builds and deployments to Jira Software Cloud."""

__version__ = "0.1.0"
