# -*- python -*-
# A master of the cluster tests, run as "twistd --nodaemon -y buildbot.tac".
# What differs between masters is in settings.json, written beside this file
# by tests/cluster/basedirs.py.
import json
import os

from buildbot.data import masters as master_records
from buildbot.master import BuildMaster
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

basedir = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(basedir, "settings.json")) as settings_file:
    settings = json.load(settings_file)

# note: this line is matched against to check that this is a buildmaster
# directory; do not edit it.
application = service.Application('buildmaster')
logfile = LogFile.fromFullPath(
    os.path.join(basedir, "twistd.log"), rotateLength=None, maxRotatedFiles=None
)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)

# Buildbot 4.3 takes a master for dead when its last heartbeat is older than
# buildbot.data.masters.EXPIRE_MINUTES (10 minutes), which every live master
# checks at each of its own heartbeats (BuildMaster.masterHeartbeatService, a
# TimerService of 60 s). The module constant is read at each check and the
# timer's step when the master starts, so both can be shortened here, before
# the master starts, for tests that wait for a dead master to expire.
if settings["expire_seconds"] is not None:
    master_records.EXPIRE_MINUTES = settings["expire_seconds"] / 60

m = BuildMaster(basedir, "master.cfg", None)
# Buildbot names a master "<hostname>:<basedir>"; the tests choose the name,
# so that a master can come back under another one.
m.name = settings["name"]
m.masterHeartbeatService.step = settings["heartbeat_seconds"]
m.setServiceParent(application)
