"""Regenerate buildbot_jira/schemas/*.json from the contract's OpenAPI document.

Usage: python scripts/extract_schemas.py PATH/TO/jira-software-devops-openapi.json [--out DIR]

The schemas are copied as they are, less their ``description`` and ``example``
annotations (see ``buildbot_jira.simulator.contract.schemas_from_document``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from buildbot_jira.simulator.contract import schemas_from_document

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "buildbot_jira" / "simulator" / "schemas"


def main(argv: list[str] | None = None) -> int:
    """Write one JSON file per schema into the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", type=Path, help="the contract's OpenAPI JSON document")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.document.read_text("utf-8"))
        files = schemas_from_document(document)
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot extract schemas from {args.document}: {error!r}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in sorted(files.items()):
        path = args.out / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
