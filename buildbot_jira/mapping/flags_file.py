"""Flags files: flags kept as code, in a JSON or YAML file that a deployment ships.

:func:`parse_flags_file` reads the file's decoded data (what ``json.loads``
or ``yaml.safe_load`` gives) into the
:class:`~buildbot_jira.mapping.feature_flags.FlagDeclaration` of each flag.
The format::

    flags:
      new-checkout:                 # the flag's key
        enabled: true               # required (unless environments: is given)
        environment: production     # default: the step's environment
        environment_type: production  # default: guessed from the name
        rollout_percentage: 25      # or rollout_text: "beta users", or rollout_rules: 3
        default_value: "off"        # what the flag serves when it is off
        url: https://flags.example.com/new-checkout
        issue_keys: [ABC-7]         # default: the build's
        display_name: New checkout
        id: "4f1c"                  # default: derived from the key
      dark-mode: false              # on or off in the step's environment
      search-v2:
        environments:               # several environments at once
          staging: true
          production: {enabled: true, rollout_percentage: 10}

``flags`` may also be a list of entries, each with a ``key``. A file with
any mistake is refused as a whole, with every mistake listed: a report of
part of a file would show Jira a state that no environment has. No I/O.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Typed once types-PyYAML is installed with the development tools.
import yaml

from buildbot_jira.jira.model import ENVIRONMENT_TYPES, SHORT_TEXT, URL_TEXT, clip, shown
from buildbot_jira.mapping.feature_flags import (
    FlagDeclaration,
    FlagState,
    FlagStatus,
    Rollout,
    is_web_url,
)
from buildbot_jira.mapping.keys import DEFAULT_RULES, IssueKeyRules, parse_issue_keys_property

__all__ = [
    "MAX_FLAGS_FILE_BYTES",
    "MAX_FLAGS_PER_FILE",
    "FlagsFileError",
    "decode_flags_file",
    "parse_flags_file",
]

#: The largest flags file read (1 MiB).
MAX_FLAGS_FILE_BYTES = 1 << 20
#: The most flags one file may list (each may be read back from Jira before it is sent).
MAX_FLAGS_PER_FILE = 500


#: The fields of a state: at the flag's level, or per entry of ``environments``.
_STATE_FIELDS = (
    "enabled",
    "environment_type",
    "rollout_percentage",
    "rollout_text",
    "rollout_rules",
    "default_value",
    "url",
)
_FLAG_FIELDS = (*_STATE_FIELDS, "environment", "environments", "issue_keys", "display_name", "id")


class FlagsFileError(ValueError):
    """A flags file that cannot be read; ``problems`` lists what is wrong, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def decode_flags_file(content: bytes, path: str) -> object:
    """A flags file's data: JSON when ``path`` ends in ``.json``, else YAML (JSON's superset)."""
    kind = "JSON" if path.lower().endswith(".json") else "YAML"
    try:
        text = content.decode("utf-8")
        return json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as problem:
        raise FlagsFileError([f"not UTF-8 {kind}: {clip(str(problem), 300)}"]) from None
    except RecursionError:
        raise FlagsFileError([f"{kind} nested too deeply to read"]) from None


def _text(entry: Mapping[str, Any], field: str, where: str, limit: int = SHORT_TEXT) -> str | None:
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise FlagsFileError([f"{where}: {field} must be a non-empty string, not {shown(value)}"])
    return value.strip()


def _web_url(entry: Mapping[str, Any], where: str) -> str | None:
    url = _text(entry, "url", where, URL_TEXT)
    if url is not None and not is_web_url(url):
        raise FlagsFileError([f"{where}: url must be an http:// or https:// URL, not {shown(url)}"])
    return url


def _state(
    entry: Mapping[str, Any], where: str, environment: str | None, default_type: str | None = None
) -> FlagState:
    enabled = entry.get("enabled")
    if not isinstance(enabled, bool):
        raise FlagsFileError([f"{where}: enabled must be true or false, not {shown(enabled)}"])
    if not environment:
        raise FlagsFileError([f"{where}: no environment (give one, or the step's environment=)"])
    kind = _text(entry, "environment_type", where) or default_type
    if kind is not None and kind not in ENVIRONMENT_TYPES:
        raise FlagsFileError(
            [f"{where}: environment_type must be one of {', '.join(sorted(ENVIRONMENT_TYPES))}"]
        )
    url = _web_url(entry, where)
    try:
        rollout = Rollout(
            percentage=entry.get("rollout_percentage"),
            text=entry.get("rollout_text"),
            rules=entry.get("rollout_rules"),
        )
    except ValueError as problem:
        raise FlagsFileError([f"{where}: {clip(str(problem), 200)}"]) from None
    status = FlagStatus(
        enabled=enabled,
        default_value=_text(entry, "default_value", where),
        rollout=rollout if rollout.to_json() else None,
    )
    try:
        return FlagState(environment=environment, status=status, type=kind, url=url)
    except ValueError as problem:  # a name of control characters only
        raise FlagsFileError([f"{where}: {clip(str(problem), 200)}"]) from None


def _refuse_unknown(entry: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for field in entry:
        if field not in known:
            near = difflib.get_close_matches(field, known, n=1) if isinstance(field, str) else []
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise FlagsFileError([f"{where}: unknown field {shown(field)}{hint}"])


def _declaration(
    key: str,
    entry: object,
    environment: str | None,
    environment_type: str | None,
    rules: IssueKeyRules,
) -> FlagDeclaration:
    where = f"flag {shown(key)}"
    if isinstance(entry, bool):  # the shorthand: on or off in the step's environment
        entry = {"enabled": entry}
    if not isinstance(entry, Mapping):
        raise FlagsFileError([f"{where}: must be true, false or a mapping, not {shown(entry)}"])
    _refuse_unknown(entry, _FLAG_FIELDS, where)
    environments = entry.get("environments")
    if environments is None:
        own = _text(entry, "environment", where)
        # The step's environment type goes with the step's environment only.
        states: tuple[FlagState, ...] = (
            _state(entry, where, own or environment, None if own else environment_type),
        )
    else:
        misplaced = [field for field in (*_STATE_FIELDS[:-1], "environment") if field in entry]
        if misplaced or not isinstance(environments, Mapping) or not environments:
            raise FlagsFileError(
                [
                    f"{where}: environments must be a non-empty mapping of environment name to "
                    f"its state, and {', '.join(misplaced) or 'no state field'} then go in it"
                ]
            )
        found = []
        for name, value in environments.items():
            inner = f"{where}, environment {shown(name)}"
            value = {"enabled": value} if isinstance(value, bool) else value
            if not isinstance(value, Mapping) or not isinstance(name, str) or not name.strip():
                raise FlagsFileError([f"{inner}: must be true, false or a mapping"])
            _refuse_unknown(value, _STATE_FIELDS, inner)
            found.append(_state(value, inner, name.strip()))
        states = tuple(found)
    keys = None
    if entry.get("issue_keys") is not None:
        try:
            keys = parse_issue_keys_property(entry["issue_keys"], rules, name="issue_keys").keys
        except ValueError as problem:
            raise FlagsFileError([f"{where}: {problem}"]) from None
    return FlagDeclaration(
        key=key,
        states=states,
        flag_id=_text(entry, "id", where),
        display_name=_text(entry, "display_name", where),
        issue_keys=keys,
        url=_web_url(entry, where) if environments is not None else None,
    )


def _entries(flags: object) -> list[tuple[object, object]]:
    if isinstance(flags, Mapping):
        return list(flags.items())
    if isinstance(flags, list):
        return [
            (entry.get("key"), {k: v for k, v in entry.items() if k != "key"})
            if isinstance(entry, Mapping)
            else (None, entry)
            for entry in flags
        ]
    raise FlagsFileError(["flags must be a mapping of flag key to its state, or a list"])


def parse_flags_file(
    data: object,
    *,
    environment: str | None = None,
    environment_type: str | None = None,
    rules: IssueKeyRules = DEFAULT_RULES,
) -> tuple[FlagDeclaration, ...]:
    """The flags that a flags file's decoded data (JSON or YAML) declares.

    ``environment`` (of type ``environment_type``, if given) is the
    environment of the flags that name none. Raises
    :class:`FlagsFileError` listing every flag that is wrong (the file is
    then sent not at all).
    """
    if not isinstance(data, Mapping) or "flags" not in data:
        raise FlagsFileError(["the file must be a mapping with a 'flags' entry"])
    _refuse_unknown(data, ("flags",), "the file")
    entries = _entries(data["flags"])
    if not entries:
        raise FlagsFileError(["the file lists no flags"])
    if len(entries) > MAX_FLAGS_PER_FILE:
        raise FlagsFileError(
            [f"{len(entries)} flags; a file may list at most {MAX_FLAGS_PER_FILE}"]
        )
    problems: list[str] = []
    declarations: dict[str, FlagDeclaration] = {}
    for index, (key, entry) in enumerate(entries):
        if not isinstance(key, str) or not key.strip():
            problems.append(f"flags[{index}]: the key must be a non-empty string, not {shown(key)}")
        elif key.strip() in declarations:
            problems.append(f"flag {shown(key)}: listed more than once")
        else:
            try:
                declarations[key.strip()] = _declaration(
                    key.strip(), entry, environment, environment_type, rules
                )
            except FlagsFileError as problem:
                problems.extend(problem.problems)
    if problems:
        raise FlagsFileError(problems)
    return tuple(declarations.values())
