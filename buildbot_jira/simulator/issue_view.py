"""The simulator's issue view: what Jira would show on each issue, as one HTML page.

``GET /`` (and ``GET /_simulator/view``) of a running simulator answers a
page in the style of Jira's development panel: a card per issue key that the
simulator holds data for, with its builds and deployments, latest update
first, states as coloured lozenges, each linking back to Buildbot. The page
is self-contained (inline CSS and script, no external assets, no build
step), is complete as the server renders it, and keeps itself current with a
small script that fetches the page again every two seconds and swaps in the
parts that changed (or, without JavaScript, with a plain meta refresh).

Every value on the page comes from what reporters sent, so every value is
escaped, only ``http(s)`` URLs become links, and a Content-Security-Policy
with a per-page nonce keeps any script but the page's own from running.
"""

from __future__ import annotations

import datetime
import html
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from buildbot_jira.simulator.core import JiraSimulator

__all__ = [
    "REFRESH_SECONDS",
    "ViewContext",
    "render_page",
    "render_simulator_page",
    "view_context",
]

#: How often the page fetches itself again.
REFRESH_SECONDS: Final = 2.0

#: State -> the lozenge colour class. Classes come from this table only, never
#: from the data, so a payload cannot smuggle markup in through a class name.
_STATE_COLOURS: Final[Mapping[str, str]] = {
    "successful": "green",
    "failed": "red",
    "in_progress": "blue",
    "pending": "purple",
    "cancelled": "grey",
    "unknown": "grey",
    "rolled_back": "orange",
}
_ENVIRONMENT_TYPES: Final = frozenset(
    {"production", "staging", "testing", "development", "unmapped"}
)
_SECTIONS: Final = ("builds", "deployments", "featureFlags", "development")


@attrs.frozen
class ViewContext:
    """What the page says of the simulator besides the issues.

    ``url`` is where the simulator answers (from the request's Host header);
    ``unknown_keys`` counts, per issue key the site does not know, the
    entities that named it: Jira stores nothing linked only to those.
    """

    url: str
    known_projects: tuple[str, ...] | None = None
    client_ids: tuple[str, ...] = ()
    requests: int = 0
    #: How many builds and deployments are stored (one linked to two issues counts once).
    builds: int = 0
    deployments: int = 0
    unknown_keys: Mapping[str, int] = attrs.field(factory=dict)
    now: float = 0.0


def view_context(simulator: JiraSimulator, *, url: str) -> ViewContext:
    """The context of ``simulator``'s page, as served at ``url``."""
    known = simulator.known_projects
    return ViewContext(
        url=url,
        known_projects=None if known is None else tuple(sorted(known)),
        client_ids=tuple(sorted(simulator.clients)),
        requests=len(simulator.requests),
        builds=len(simulator.builds),
        deployments=len(simulator.deployments),
        unknown_keys=_unknown_keys(simulator),
        now=simulator.clock.seconds(),
    )


def _unknown_keys(simulator: JiraSimulator) -> dict[str, int]:
    """Issue keys of accepted bulk requests that the site does not know, with counts."""
    counts: dict[str, int] = {}
    for request in simulator.requests:
        if request.status != 202 or not isinstance(request.body, dict):
            continue
        for section in ("builds", "deployments"):
            entities = request.body.get(section)
            for entity in entities if isinstance(entities, list) else ():
                for key in _entity_issue_keys(entity):
                    if not simulator.is_known_issue(key):
                        counts[key.upper()] = counts.get(key.upper(), 0) + 1
    return dict(sorted(counts.items()))


def _entity_issue_keys(entity: object) -> list[str]:
    if not isinstance(entity, dict):
        return []
    keys = [k for k in entity.get("issueKeys") or () if isinstance(k, str)]
    for association in entity.get("associations") or ():
        if isinstance(association, dict) and association.get("associationType") in (
            "issueKeys",
            "issueIdOrKeys",
        ):
            keys += [v for v in association.get("values") or () if isinstance(v, str)]
    return list(dict.fromkeys(keys))


def render_simulator_page(simulator: JiraSimulator, *, url: str) -> str:
    """The whole page for ``simulator`` as it is now."""
    return render_page(simulator.issues(), view_context(simulator, url=url))


# -- rendering ------------------------------------------------------------------


def _e(value: object) -> str:
    """``value`` as text, escaped for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _moment(value: object) -> float:
    """Epoch seconds of an ISO 8601 timestamp; 0 for anything else."""
    if not isinstance(value, str):
        return 0.0
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _latest_first(entities: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def order(entity: Mapping[str, Any]) -> tuple[float, int]:
        sequence = entity.get("updateSequenceNumber", entity.get("updateSequenceId", 0))
        return _moment(entity.get("lastUpdated")), sequence if isinstance(sequence, int) else 0

    return sorted(entities, key=order, reverse=True)


def _latest_update(sections: Mapping[str, Sequence[Mapping[str, Any]]]) -> float:
    moments = [_moment(e.get("lastUpdated")) for name in _SECTIONS for e in sections.get(name, ())]
    return max(moments, default=0.0)


def _time(value: object) -> str:
    seconds = _moment(value)
    if not seconds:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    shown = moment.strftime("%d %b %H:%M:%S UTC")
    return f'<time datetime="{_e(value)}">{_e(shown)}</time>'


def _link(text: object, url: object) -> str:
    """A link to ``url`` if it is an http(s) URL, else the text alone."""
    if isinstance(url, str) and urlsplit(url).scheme.lower() in ("http", "https"):
        return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{_e(text)}</a>'
    return f"<span>{_e(text)}</span>"


def _lozenge(state: object) -> str:
    colour = _STATE_COLOURS.get(state if isinstance(state, str) else "", "grey")
    words = str(state or "unknown").replace("_", " ")
    return f'<span class="lozenge {colour}" data-state="{_e(state)}">{_e(words)}</span>'


def _environment_chip(kind: object) -> str:
    css = kind if isinstance(kind, str) and kind in _ENVIRONMENT_TYPES else "unmapped"
    return f'<span class="env env-{css}" title="environment type">{_e(kind or "unmapped")}</span>'


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _details(parts: Iterable[str]) -> str:
    shown = [part for part in parts if part]
    return f'<div class="sub">{" · ".join(shown)}</div>' if shown else ""


def _build_row(build: Mapping[str, Any]) -> str:
    tests = build.get("testInfo") if isinstance(build.get("testInfo"), dict) else None
    refs = [r for r in build.get("references") or () if isinstance(r, dict)]
    branch = next((r["ref"].get("name") for r in refs if isinstance(r.get("ref"), dict)), None)
    commit = next((r["commit"].get("id") for r in refs if isinstance(r.get("commit"), dict)), None)
    parts = [
        f'<span class="branch">{_e(branch)}</span>' if branch else "",
        f"<code>{_e(str(commit)[:10])}</code>" if commit else "",
        _tests_text(tests) if tests else "",
        f"pipeline {_e(build.get('pipelineId'))}",
    ]
    name = build.get("displayName") or f"#{build.get('buildNumber')}"
    return _row(build.get("state"), _link(name, build.get("url")), parts, build)


def _tests_text(tests: Mapping[str, Any]) -> str:
    counts = [
        f"{_e(tests.get(field))} {label}"
        for field, label in (
            ("numberPassed", "passed"),
            ("numberFailed", "failed"),
            ("numberSkipped", "skipped"),
        )
        if isinstance(tests.get(field), int) and (tests.get(field) or label == "passed")
    ]
    return "tests: " + ", ".join(counts) if counts else ""


def _deployment_row(deployment: Mapping[str, Any]) -> str:
    environment = deployment.get("environment")
    environment = environment if isinstance(environment, dict) else {}
    pipeline = deployment.get("pipeline")
    pipeline = pipeline if isinstance(pipeline, dict) else {}
    target = environment.get("displayName") or environment.get("id") or "?"
    title = (
        f'<strong class="environment">{_e(target)}</strong>'
        f"{_environment_chip(environment.get('type'))}"
        f' <span class="to">·</span> '
        f"{_link(deployment.get('displayName') or 'deployment', deployment.get('url'))}"
    )
    parts = [
        _e(deployment.get("description")) if deployment.get("description") else "",
        f"deployment {_e(deployment.get('deploymentSequenceNumber'))}",
        f"pipeline {_link(pipeline.get('displayName') or pipeline.get('id'), pipeline.get('url'))}",
    ]
    return _row(deployment.get("state"), title, parts, deployment)


def _other_row(entity: Mapping[str, Any]) -> str:
    """A feature flag, commit, branch or pull request: its name and link."""
    name = next(
        (
            entity[field]
            for field in ("displayName", "title", "name", "message", "displayId", "id", "key")
            if isinstance(entity.get(field), str) and entity[field]
        ),
        "?",
    )
    return _row(None, _link(name, entity.get("url")), [], entity, lozenge=False)


def _row(
    state: object,
    title: str,
    parts: Sequence[str],
    entity: Mapping[str, Any],
    *,
    lozenge: bool = True,
) -> str:
    colour = _STATE_COLOURS.get(state if isinstance(state, str) else "", "grey")
    badge = _lozenge(state) if lozenge else ""
    return (
        f'<li class="row edge-{colour}">{badge}'
        f'<div class="what"><div class="title">{title}</div>{_details(parts)}</div>'
        f'<div class="when">{_time(entity.get("lastUpdated"))}</div></li>'
    )


def _section(title: str, rows: Sequence[str], empty: str) -> str:
    body = f'<ul class="rows">{"".join(rows)}</ul>' if rows else f'<p class="none">{empty}</p>'
    return (
        f'<section class="panel"><h3>{_e(title)} <span class="count">{len(rows)}</span></h3>'
        f"{body}</section>"
    )


def _issue_card(key: str, sections: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    builds = _latest_first(sections.get("builds", ()))
    deployments = _latest_first(sections.get("deployments", ()))
    others = _latest_first([*sections.get("featureFlags", ()), *sections.get("development", ())])
    latest = _latest_first([*builds, *deployments])
    headline = _lozenge(latest[0].get("state")) if latest else ""
    parts = [
        _section("Builds", [_build_row(b) for b in builds], "No builds."),
        _section("Deployments", [_deployment_row(d) for d in deployments], "No deployments."),
    ]
    if others:
        parts.append(_section("Other development data", [_other_row(o) for o in others], ""))
    return (
        f'<article class="issue" data-issue="{_e(key)}">'
        f'<header><h2><span class="key">{_e(key)}</span></h2>'
        f'<span class="latest">latest {headline}</span></header>'
        f"{''.join(parts)}</article>"
    )


def _summary(issues: Mapping[str, Any], context: ViewContext) -> str:
    return (
        f'<p id="summary" class="summary" data-live>{_plural(len(issues), "issue")} · '
        f"{_plural(context.builds, 'build')} · {_plural(context.deployments, 'deployment')} · "
        f"{_plural(context.requests, 'request')} received</p>"
    )


def _unknown_notice(context: ViewContext) -> str:
    if not context.unknown_keys:
        return '<div id="unknown" data-live></div>'
    keys = ", ".join(
        f"<code>{_e(key)}</code> ({_plural(count, 'entity')})"
        for key, count in context.unknown_keys.items()
    )
    projects = sorted({key.rpartition("-")[0] for key in context.unknown_keys})
    known = ", ".join(context.known_projects or ())
    hint = " ".join(f"--project {_e(p)}" for p in projects)
    return (
        '<div id="unknown" class="notice" data-live><strong>Not linked to any issue:</strong> '
        f"reports named issue keys this site does not know: {keys}. Jira stores nothing "
        f"linked only to unknown issues. Known projects: {_e(known)}. To accept these, start "
        f"the simulator with <code>{hint}</code> (or <code>--any-project</code>).</div>"
    )


def _empty_state(context: ViewContext) -> str:
    client_id = context.client_ids[0] if context.client_ids else "sim-client-id"
    return (
        '<div class="empty"><h2>Nothing reported yet</h2>'
        "<p>Point a reporter at this simulator; its builds and deployments show here "
        "within two seconds. In <code>master.cfg</code>:</p>"
        "<pre>c['services'].append(reporters.JiraBuildReporter(\n"
        '    site="example.atlassian.net",\n'
        f'    client_id="{_e(client_id)}",\n'
        '    client_secret="...",  # the simulator\'s secret\n'
        f'    api_url="{_e(context.url)}",\n'
        f'    site_url="{_e(context.url)}",\n'
        "))</pre>"
        "<p>Or run <code>buildbot-jira demo</code> to watch a real master do it.</p></div>"
    )


def render_page(
    issues: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    context: ViewContext,
    *,
    nonce: str | None = None,
) -> str:
    """The page for ``issues`` (as ``JiraSimulator.issues()`` gives them), latest activity first."""
    nonce = nonce or secrets.token_urlsafe(16)
    ordered = sorted(issues.items(), key=lambda item: _latest_update(item[1]), reverse=True)
    cards = "".join(_issue_card(key, sections) for key, sections in ordered)
    body = cards or _empty_state(context)
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(policy)}">'
        f'<noscript><meta http-equiv="refresh" content="{int(REFRESH_SECONDS * 2.5)}"></noscript>'
        '<link rel="icon" href="data:,">'
        "<title>Jira Cloud simulator · issues</title>"
        f'<style nonce="{_e(nonce)}">{_CSS}</style></head>'
        '<body data-refreshes="0">'
        '<header class="top"><div class="brand"><span class="logo" aria-hidden="true"></span>'
        'Jira Cloud simulator <span class="faint">· development panel</span></div>'
        '<span id="live" class="live">server-rendered</span></header>'
        f"<main>{_summary(issues, context)}{_unknown_notice(context)}"
        f'<div id="issues" class="issues" data-live>{body}</div></main>'
        '<footer>JSON: <a href="/_simulator/issues">issues</a> · '
        '<a href="/_simulator/state">everything received</a> · this page refreshes every '
        f"{REFRESH_SECONDS:g} s</footer>"
        f'<script nonce="{_e(nonce)}">{_SCRIPT}</script>'
        "</body></html>\n"
    )


_CSS: Final = """
:root{--text:#172B4D;--faint:#6B778C;--line:#DFE1E6;--link:#0052CC}
*{box-sizing:border-box}
body{margin:0;background:#F4F5F7;color:var(--text);
font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
.top{display:flex;align-items:center;justify-content:space-between;background:#fff;
border-bottom:1px solid var(--line);padding:10px 24px}
.brand{font-weight:600;font-size:16px;display:flex;align-items:center;gap:8px}
.logo{width:18px;height:18px;border-radius:3px;background:linear-gradient(135deg,#2684FF,#0052CC)}
.faint{color:var(--faint);font-weight:400}
.live{font-size:12px;color:var(--faint)}.live::before{content:"\\25CF";margin-right:5px;color:#C1C7D0}
.live.on::before{color:#36B37E}.live.off{color:#BF2600}.live.off::before{color:#DE350B}
main{max-width:1080px;margin:0 auto;padding:16px 24px 8px}
.summary{color:var(--faint);margin:0 0 12px}
.notice{background:#FFFAE6;border:1px solid #FFE380;border-radius:4px;padding:10px 12px;
margin-bottom:12px}
.issues{display:grid;gap:12px}
.issue{background:#fff;border-radius:6px;box-shadow:0 1px 2px rgba(9,30,66,.2);padding:12px 16px}
.issue>header{display:flex;align-items:center;justify-content:space-between;
border-bottom:1px solid var(--line);padding-bottom:8px}
h2{margin:0;font-size:18px}.key{color:var(--link)}
.latest{font-size:12px;color:var(--faint)}
.panel h3{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--faint);
margin:10px 0 5px}
.count{background:#DFE1E6;color:#42526E;border-radius:8px;padding:0 6px;margin-left:4px}
.rows{list-style:none;margin:0;padding:0}
.row{display:flex;align-items:flex-start;gap:10px;padding:5px 10px;border-left:3px solid #C1C7D0;
background:#FAFBFC;border-radius:3px;margin-bottom:5px}
.edge-green{border-left-color:#36B37E}.edge-red{border-left-color:#DE350B}
.edge-blue{border-left-color:#0065FF}.edge-purple{border-left-color:#6554C0}
.edge-orange{border-left-color:#FF8B00}
.what{flex:1;min-width:0}.title{font-weight:500;overflow-wrap:anywhere}
.sub{color:var(--faint);font-size:12px;margin-top:1px;overflow-wrap:anywhere}
.when{color:var(--faint);font-size:12px;white-space:nowrap}
.lozenge{display:inline-block;min-width:98px;text-align:center;font-size:11px;font-weight:700;
text-transform:uppercase;border-radius:3px;padding:2px 6px;margin-top:1px;white-space:nowrap}
.green{background:#E3FCEF;color:#006644}.red{background:#FFEBE6;color:#BF2600}
.blue{background:#DEEBFF;color:#0747A6}.grey{background:#DFE1E6;color:#42526E}
.purple{background:#EAE6FF;color:#403294}.orange{background:#FFE7C2;color:#A54800}
.latest .lozenge{min-width:0}
.env{font-size:11px;border:1px solid;border-radius:3px;padding:0 5px;margin-left:4px;
text-transform:uppercase;font-weight:600}
.env-production{color:#BF2600}.env-staging{color:#A54800}.env-testing{color:#403294}
.env-development{color:#0747A6}.env-unmapped{color:#6B778C}
.to{color:var(--faint)}.branch{font-family:SFMono-Regular,Menlo,Consolas,monospace}
code,pre{font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
code{background:#F4F5F7;border-radius:3px;padding:0 3px}
pre{background:#F4F5F7;border-radius:4px;padding:10px;overflow:auto}
.none{color:var(--faint);margin:0 0 4px}
.empty{background:#fff;border-radius:6px;padding:16px 20px;box-shadow:0 1px 2px rgba(9,30,66,.2)}
footer{max-width:1080px;margin:0 auto;padding:8px 24px 24px;color:var(--faint);font-size:12px}
"""

# Fetches the page again and swaps in every [data-live] element that changed:
# the server stays the only renderer, so escaping happens in one place, and
# DOMParser never runs scripts of the fetched document.
_SCRIPT: Final = f"""
(function () {{
  "use strict";
  var every = {int(REFRESH_SECONDS * 1000)}, refreshes = 0;
  var live = document.getElementById("live");
  function show(text, state) {{ live.textContent = text; live.className = "live " + state; }}
  function swap(fresh) {{
    fresh.querySelectorAll("[data-live]").forEach(function (next) {{
      var now = document.getElementById(next.id);
      if (now && now.innerHTML !== next.innerHTML) {{
        now.replaceWith(document.adoptNode(next));
      }}
    }});
  }}
  function refresh() {{
    fetch(window.location.pathname, {{cache: "no-store"}})
      .then(function (answer) {{
        if (!answer.ok) {{ throw new Error("HTTP " + answer.status); }}
        return answer.text();
      }})
      .then(function (text) {{
        swap(new DOMParser().parseFromString(text, "text/html"));
        refreshes += 1;
        document.body.setAttribute("data-refreshes", String(refreshes));
        show("live · updated " + new Date().toLocaleTimeString(), "on");
      }})
      .catch(function () {{ show("simulator not reachable · retrying", "off"); }})
      .then(function () {{ window.setTimeout(refresh, every); }});
  }}
  show("live", "on");
  window.setTimeout(refresh, every);
}})();
"""
