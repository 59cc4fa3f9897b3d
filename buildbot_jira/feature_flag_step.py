"""``JiraFeatureFlag``: a build step that tells Jira where a feature flag is on.

It renders one flag from its arguments, or reads every flag of a JSON or
YAML file in the build's workdir through the worker (as ``FileUpload`` does,
at most 1 MiB), links each to the build's issues, and sends them with the
master's shared connection. Jira being slow or down gives WARNINGS, unless
``fail_on_error``; its ``jira feature flags`` log shows what was sent and
what Jira answered. The mapping is :mod:`buildbot_jira.mapping.feature_flags`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
from buildbot import config
from buildbot.process import buildstep
from buildbot.process.results import FAILURE, SUCCESS, WARNINGS, statusToString
from buildbot.reporters.utils import getURLForBuild
from twisted.internet import defer
from twisted.logger import Logger

from buildbot_jira.arguments import closest
from buildbot_jira.connection import connect
from buildbot_jira.credentials import shown_argument
from buildbot_jira.events import JiraEventGenerator
from buildbot_jira.feature_flag_options import (
    FEATURE_FLAG_ARGUMENTS,
    FeatureFlagOptions,
    parse_feature_flag,
    rendered_text,
    rendered_type,
)
from buildbot_jira.feature_flag_options import (
    RENDERED_ARGUMENTS as RENDERED,
)
from buildbot_jira.jira.client import JiraCloud, RetryPolicy, SubmitResult
from buildbot_jira.jira.errors import JiraConfigError, JiraError, JiraUnavailableError
from buildbot_jira.jira.model import MAX_INT64, SequenceNumbers, iso_timestamp
from buildbot_jira.mapping.builds import BuildMapping, Skip
from buildbot_jira.mapping.feature_flags import (
    FeatureFlag,
    FlagDeclaration,
    feature_flag,
    known_details,
)
from buildbot_jira.mapping.flags_file import (
    MAX_FLAGS_FILE_BYTES,
    FlagsFileError,
    decode_flags_file,
    parse_flags_file,
)
from buildbot_jira.mapping.keys import parse_issue_keys_property
from buildbot_jira.worker_file import WorkerFileError, read_worker_file

__all__ = ["FLAG_RETRY", "JiraFeatureFlag"]

log = Logger()

#: A few quick retries: the step's ``wait_timeout`` bounds the whole exchange.
FLAG_RETRY = RetryPolicy(max_attempts=3, max_delay=10.0, max_retry_after=30.0)


class _NotSent(Exception):
    """Why the step sends nothing; ``summary`` is a few words for its state string."""

    def __init__(self, message: str, summary: str) -> None:
        super().__init__(message)
        self.summary = summary


class JiraFeatureFlag(buildstep.BuildStep):
    """Tells Jira the state of a feature flag (or of every flag in a file), linked to issues.

    One flag: ``flag_key``, ``enabled`` and ``environment`` (renderables),
    with ``rollout_percentage``, ``rollout_text`` or ``rollout_rules``,
    ``default_value``, ``url``, ``flag_id`` and ``display_name`` if wanted.
    Every flag of a file: ``flags_file``, the path of a JSON or YAML file in
    the build's workdir (see :mod:`buildbot_jira.mapping.flags_file` for its
    format); ``environment`` is then the default of its flags.

    The issues are ``issue_keys``, else the build's ``jira_issue_keys``
    property, else the keys its branch, properties and changes name (with
    ``issue_key_pattern``, ``projects``, ``ignored_issue_keys`` and
    ``ignore_case``, as the reporters find them). A flag without an issue is
    not sent (WARNINGS). The site arguments are those of the reporters.

    :param environment_type: the environment's Jira type; guessed from its
        name by default (``environment_types`` maps names to types).
    :param keep_environments: read each flag back from Jira first and keep
        the environments this build does not report (True).
    :param wait_timeout: seconds to wait for Jira in all (120).
    :param fail_on_error: FAILURE instead of WARNINGS when nothing could be
        sent or Jira did not store a flag.
    :param dry_run: write the payload to the log and send nothing.
    """

    name = "jira-feature-flag"
    # Jira being down must not stop a deployment: WARNINGS shows, the build goes on.
    haltOnFailure = False
    warnOnWarnings = True

    #: The checked arguments; None only when a configuration error was collected.
    options: FeatureFlagOptions | None
    _summary: str = "Jira feature flags"
    _log: Any = None
    _at_maximum = False  # whether Jira holds a flag at the highest updateSequenceId

    def __init__(self, **kwargs: Any) -> None:
        service = f"{type(self).__name__} {kwargs.get('name', self.name)!r}"
        ours = {name: kwargs.pop(name) for name in list(kwargs) if name in FEATURE_FLAG_ARGUMENTS}
        known = (*FEATURE_FLAG_ARGUMENTS, *buildstep.BuildStep._params_names)
        unknown = [name for name in kwargs if name not in buildstep.BuildStep._params_names]
        for name in unknown:
            suggestion = closest(name, known)
            hint = f" (did you mean {suggestion}?)" if suggestion else ""
            config.error(f"{service}: unknown argument {name}{hint}")
            del kwargs[name]
        self.options = None
        try:
            self.options = parse_feature_flag(**ours)
        except JiraConfigError as problem:
            config.error(f"{service}: {problem}")
        super().__init__(**kwargs)

    def __str__(self) -> str:
        # BuildStep's own text shows every argument, and Buildbot logs it.
        kwargs = self.get_step_factory().kwargs
        shown = ", ".join(f"{n}={shown_argument(n, v)!r}" for n, v in kwargs.items())
        return f"{type(self).__name__}({shown})"

    __repr__ = __str__

    def getResultSummary(self) -> dict[str, str]:
        """What the step sent, shown on the build's page."""
        if self.results in (None, SUCCESS):
            return {"step": self._summary}
        return {"step": f"{self._summary} ({statusToString(self.results)})"}

    # -- running ------------------------------------------------------------------

    async def run(self) -> int:
        """Render, find the issues, send, and judge Jira's answer."""
        self._log = await self.addLog("jira feature flags")
        if self.options is None:  # only when the configuration errors were not raised
            return await self._not_sent(_NotSent("the step's arguments are wrong", "config error"))
        options = self.options
        try:
            site = options.site.rendered(
                *[
                    str(rendered_text(await self._render(value, name), name, required=True))
                    for name, value in (
                        ("client_id", options.site.client_id),
                        ("client_secret", options.site.client_secret),
                    )
                ]
            )
            declarations = await self._declarations(options)
            keys = await self._build_keys(options, declarations)
        except JiraConfigError as problem:
            return await self._not_sent(_NotSent(str(problem), problem.summary))
        except _NotSent as problem:
            return await self._not_sent(problem)
        if options.dry_run:
            flags = await self._flags(declarations, keys, options, {})
            await self._write_sent(flags, "Dry run: this would be sent (nothing was)")
            self._summary = f"Jira feature flags: dry run, {self._describe(flags)}"
            return WARNINGS if len(flags) < len(declarations) or not flags else SUCCESS
        connection = None
        try:
            connection = await connect(self.master, site, retry=FLAG_RETRY, user=self.name)
            exchange = defer.Deferred.fromCoroutine(
                self._exchange(connection.client, declarations, keys, options)
            )
            exchange.addTimeout(options.wait_timeout, self.master.reactor)
            flags, result = await exchange
        except defer.TimeoutError:
            return await self._not_sent(
                _NotSent(f"Jira did not answer within {options.wait_timeout:g} s", "Jira timeout")
            )
        except JiraError as problem:
            message = f"Sending to Jira's feature flags API failed: {problem}\n{problem.hint}"
            return await self._not_sent(_NotSent(message, problem.summary))
        except Exception as problem:  # noqa: BLE001 - never a build's exception for Jira's sake
            log.failure("{step}: could not report feature flags to Jira", step=self.name)
            message = f"Could not report to Jira: {type(problem).__name__} (see the master's log)"
            return await self._not_sent(_NotSent(message, "error"))
        finally:
            if connection is not None:
                await connection.release()
        return await self._conclude(flags, result, len(declarations), options)

    async def _render(self, renderable: Any, argument: str) -> Any:
        try:
            return await self.build.render(renderable)
        except (KeyError, ValueError, TypeError) as problem:
            # A missing secret or property: Buildbot's message names it, never a value.
            raise JiraConfigError(f"{argument} could not be rendered: {problem}") from None
        except Exception as problem:  # noqa: BLE001 - its message may hold what it rendered
            raise JiraConfigError(
                f"{argument} could not be rendered ({type(problem).__name__})"
            ) from None

    async def _declarations(self, options: FeatureFlagOptions) -> tuple[FlagDeclaration, ...]:
        rendered = {name: await self._render(getattr(options, name), name) for name in RENDERED}
        if options.flags_file is None:
            return (options.declaration(rendered),)
        path = str(rendered_text(rendered["flags_file"], "flags_file", required=True))
        try:
            content = await read_worker_file(
                self, path, limit=MAX_FLAGS_FILE_BYTES, what="flags file"
            )
            return parse_flags_file(
                decode_flags_file(content, path),
                environment=rendered_text(rendered["environment"], "environment"),
                environment_type=rendered_type(rendered["environment_type"]),
                rules=options.rules,
            )
        except WorkerFileError as problem:
            raise _NotSent(str(problem), problem.summary) from None
        except (ValueError, RecursionError) as problem:  # a FlagsFileError, or worse
            odd = f"cannot be read ({type(problem).__name__})"
            found = problem.problems if isinstance(problem, FlagsFileError) else [odd]
            lines = "\n".join(f"  {line}" for line in found)
            raise _NotSent(
                f"The flags file {path!r} is refused; nothing is sent:\n{lines}",
                "flags file refused",
            ) from None

    async def _build_keys(
        self, options: FeatureFlagOptions, declarations: Sequence[FlagDeclaration]
    ) -> tuple[str, ...]:
        """The keys of flags that name none: ``issue_keys``, the property, else the build's."""
        if options.issue_keys is not None:
            value = await self._render(options.issue_keys, "issue_keys")
            return await self._parsed(value, "issue_keys", options)
        if all(declaration.issue_keys is not None for declaration in declarations):
            return ()
        name = options.issue_keys_property
        if self.getProperty(name) is not None:
            keys = await self._parsed(self.getProperty(name), f"property {name!r}", options)
            if keys:
                return keys
        mapping = BuildMapping(rules=options.rules, issue_keys_property=name)
        generator = JiraEventGenerator(mapping=mapping, test_results=False)
        snapshot = await generator.running_snapshot(self.master, self.build.buildid)
        if snapshot is None:
            return ()
        # The build's own properties are newer than the database's copy.
        current = {key: value for key, (value, _) in self.build.getProperties().asDict().items()}
        found = mapping.issue_keys(attrs.evolve(snapshot, properties=current))
        for note in found.notes:
            await self._write(f"Issue keys: {note}")
        return found.keys

    async def _parsed(self, value: Any, name: str, options: FeatureFlagOptions) -> tuple[str, ...]:
        try:
            parsed = parse_issue_keys_property(value, options.rules, name=name)
        except ValueError as problem:
            raise JiraConfigError(str(problem)) from None
        for rejected in parsed.rejected:
            await self._write(f"Issue keys: {name}: dropped {rejected.entry!r}: {rejected.reason}")
        return parsed.keys

    async def _flags(
        self,
        declarations: Sequence[FlagDeclaration],
        keys: Sequence[str],
        options: FeatureFlagOptions,
        stored: dict[str, object],
    ) -> list[FeatureFlag]:
        """The flags to send; the log says why any other is not."""
        now = float(self.master.reactor.seconds())
        url = await self._build_url()
        sequence = SequenceNumbers()
        flags = []
        for declaration in declarations:
            known, last = known_details(stored.get(declaration.id))
            if last >= MAX_INT64:
                await self._write(
                    f"Not sent: Jira holds flag {declaration.key!r} at the highest "
                    "updateSequenceId, and would ignore this update as not newer"
                )
                self._at_maximum = True
                continue
            flag = feature_flag(
                declaration,
                issue_keys=keys,
                last_updated=iso_timestamp(now),
                # Above what Jira holds, or it ignores the update.
                update_sequence_id=min(MAX_INT64, max(sequence.next(now), last + 1)),
                fallback_url=url,
                environment_types=options.environment_types,
                known=known,
            )
            if isinstance(flag, Skip):
                await self._write(f"Not sent: {flag.reason}")
            else:
                flags.append(flag)
        return flags

    async def _build_url(self) -> str:
        builderid = await self.build.getBuilderId()
        return str(getURLForBuild(self.master, builderid, self.build.number))

    async def _exchange(
        self,
        client: JiraCloud,
        declarations: Sequence[FlagDeclaration],
        keys: Sequence[str],
        options: FeatureFlagOptions,
    ) -> tuple[list[FeatureFlag], SubmitResult | None]:
        """Read the flags back (if asked), then send them; what was sent and Jira's answer."""
        stored: dict[str, object] = {}
        linked = [d for d in declarations if (keys if d.issue_keys is None else d.issue_keys)]
        for declaration in linked if options.keep_environments else ():
            try:
                stored[declaration.id] = await client.get_feature_flag(declaration.id)
            except JiraUnavailableError:
                raise
            except JiraError as problem:
                # Sending may still work (a permission to write, not to read).
                await self._write(
                    f"Could not read what Jira holds of the flags ({problem}); "
                    "sending only the environments this build reports"
                )
                break
        flags = await self._flags(declarations, keys, options, stored)
        if not flags:
            return flags, None
        await self._write_sent(flags, "Sending to Jira")
        payloads = [flag.to_json() for flag in flags]
        return flags, await client.submit_feature_flags(payloads)

    async def _conclude(
        self,
        flags: list[FeatureFlag],
        result: SubmitResult | None,
        declared: int,
        options: FeatureFlagOptions,
    ) -> int:
        if result is None and self._at_maximum:
            return await self._not_sent(_NotSent("Nothing was sent", "sequence at its maximum"))
        if result is None:
            return await self._not_sent(
                _NotSent(
                    "No flag names a Jira issue: nothing was sent (give issue_keys=, or build "
                    "a branch or change that names an issue)",
                    "no issue keys",
                )
            )
        accepted = {str(flag_id) for flag_id in result.accepted}
        if accepted:
            await self._write(f"Jira accepted: {', '.join(sorted(accepted))}")
        for rejection in result.rejected:
            await self._write(f"Jira rejected {rejection.key}: {'; '.join(rejection.errors)}")
        if result.unknown_issue_keys:
            await self._write(
                f"Jira does not know the issue(s) {', '.join(result.unknown_issue_keys)}; a flag "
                "linked to no known issue is not stored"
            )
        missing = [flag.id for flag in flags if flag.id not in accepted]
        if missing:
            self._summary = f"Jira feature flags: not stored: {', '.join(missing)}"
            return FAILURE if options.fail_on_error else WARNINGS
        self._summary = f"Jira feature flags: {self._describe(flags)}"
        return WARNINGS if len(flags) < declared else SUCCESS

    @staticmethod
    def _describe(flags: Sequence[FeatureFlag]) -> str:
        if len(flags) != 1:
            return f"{len(flags)} flags"
        (flag,) = flags
        top = flag.summary_detail
        return f"{flag.key} {top.status.describe()} in {top.name}"

    async def _not_sent(self, problem: _NotSent) -> int:
        self._summary = f"Jira feature flags: {problem.summary}"
        await self._write(str(problem))
        options = self.options
        return FAILURE if options is None or options.fail_on_error else WARNINGS

    async def _write_sent(self, flags: Sequence[FeatureFlag], heading: str) -> None:
        payload = json.dumps({"flags": [flag.to_json() for flag in flags]}, indent=2)
        await self._write(f"{heading} ({self._describe(flags)}):\n{payload}")

    async def _write(self, line: str) -> None:
        if self._log is not None:
            text = self.build.properties.cleanupTextFromSecrets(line)
            await self._log.addStdout(text + "\n")
