"""A real Buildbot cluster for tests: database servers, a WAMP router, master processes.

Buildbot runs several masters on one database (PostgreSQL or MySQL) with a
WAMP router (crossbar) carrying their messages. The pieces, each started by
the tests themselves and stopped after them:

- :mod:`~tests.cluster.databases`: private SQLite, PostgreSQL and MariaDB
  servers (Debian's binaries), one fresh database per test;
- :mod:`~tests.cluster.router`: a crossbar router from its own virtual
  environment (``scripts/crossbar-venv.sh``);
- :mod:`~tests.cluster.basedirs` and :mod:`~tests.cluster.masters`: masters
  as processes of their own (``twistd -y buildbot.tac``, from ``template/``),
  each with a local worker and a ``JiraBuildReporter`` pointed at a simulator
  in the test process, driven through Buildbot's REST API;
- :mod:`~tests.cluster.harness`: several masters on one database and router;
- :mod:`~tests.cluster.testcase`: the test case that puts it together;
- :mod:`~tests.cluster.processes`: the child processes, never left behind.
"""
