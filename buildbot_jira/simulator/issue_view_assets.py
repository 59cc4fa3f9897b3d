"""The issue view's stylesheet and script, inline in every page (no external assets).

The script fetches the page again every :data:`REFRESH_SECONDS` and swaps in
the parts that changed; it runs under the page's Content-Security-Policy
nonce, like the stylesheet.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CSS", "REFRESH_SECONDS", "SCRIPT"]

#: How often the page fetches itself again.
REFRESH_SECONDS: Final = 2.0

CSS: Final = """
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
.hash{font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;margin-right:4px}
.message{font-weight:400}
.more{color:var(--faint);font-size:12px;padding:2px 13px 6px}
.envs{list-style:none;margin:4px 0 0;padding:0}
.env-row{font-size:12px;color:var(--faint);padding:2px 0;display:flex;flex-wrap:wrap;
align-items:center;gap:6px}
.env-row .environment{color:var(--text)}.env-row .lozenge{min-width:0}
.env-row .env{margin-left:0}
.empty{background:#fff;border-radius:6px;padding:16px 20px;box-shadow:0 1px 2px rgba(9,30,66,.2)}
footer{max-width:1080px;margin:0 auto;padding:8px 24px 24px;color:var(--faint);font-size:12px}
"""

# Fetches the page again and swaps in every [data-live] element that changed:
# the server stays the only renderer, so escaping happens in one place, and
# DOMParser never runs scripts of the fetched document.
SCRIPT: Final = f"""
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
