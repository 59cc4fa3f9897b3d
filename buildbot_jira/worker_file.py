"""Reading a small file of a build's workdir on the master, through the worker.

As Buildbot's ``FileUpload`` does, with the worker's ``uploadFile``
command, but into memory and up to a limit: what a step reads to report
(a flags file, say) never touches the master's disk.
"""

from __future__ import annotations

from typing import Any

from buildbot.process import remotecommand
from buildbot.worker.protocols.base import FileWriterImpl

__all__ = ["WorkerFileError", "read_worker_file"]


class WorkerFileError(Exception):
    """A file that could not be read; ``summary`` is a few words for a step's state string."""

    def __init__(self, message: str, summary: str) -> None:
        super().__init__(message)
        self.summary = summary


class _FileContent(FileWriterImpl):
    """Keeps what the worker sends of a file, up to ``limit`` bytes, in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def remote_write(self, data: bytes | str) -> None:
        """Keep a block of the file (the worker sends bytes; a local worker may send text)."""
        block = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self.data += block[: max(0, self.limit - len(self.data))]

    def remote_close(self) -> None:
        """The file is all sent."""


async def read_worker_file(step: Any, path: str, *, limit: int, what: str = "file") -> bytes:
    """The file at ``path`` (relative to ``step``'s workdir), of at most ``limit`` bytes.

    ``step`` is the running build step whose worker reads it; ``what``
    names the file in messages. Raises :class:`WorkerFileError` when the
    worker cannot send files, the file is larger than ``limit`` or it
    cannot be read.
    """
    if step.workerVersion("uploadFile") is None:
        raise WorkerFileError("The worker cannot send files (no uploadFile command)", "no file")
    content = _FileContent(limit + 1)
    source = "slavesrc" if step.workerVersionIsOlderThan("uploadFile", "3.0") else "workersrc"
    args = {"workdir": step.workdir, "writer": content, source: path, "blocksize": 32 * 1024}
    args["maxsize"] = limit + 1
    command = remotecommand.RemoteCommand("uploadFile", args, collectStderr=True)
    await step.runCommand(command)
    if len(content.data) > limit:
        size = f"{limit // 1024**2} MiB" if limit >= 1024**2 else f"{limit:,} bytes"
        raise WorkerFileError(f"The {what} {path!r} is larger than {size}", f"{what} too large")
    if command.didFail():
        said = command.stderr.strip() or f"exit status {command.rc}"
        raise WorkerFileError(
            f"The {what} {path!r} could not be read in {step.workdir!r}: {said}", f"no {what}"
        )
    return bytes(content.data)
