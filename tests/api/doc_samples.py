"""The `Sample response` JSON of OCP's API pages, and the key paths in a JSON document.

The samples are vendored in tests/api/samples/ (one file per page, mirroring the docs tree, with
the page it comes from), since CI checks out this repository alone. Refresh them from a copy of
the docs (`oceanbase/ocp-doc` V3.1.1 `en-US/500.api-reference/`) with

    python -m tests.api.doc_samples /work/shared/ocp-docs

which re-extracts every page and keeps the hand fixes listed in FIXES. test_doc_samples.py checks
the vendored copies against the docs when the docs are there (../shared/ocp-docs).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).with_name("samples")
DOCS = ROOT.parent / "shared" / "ocp-docs"  # where the docs sit next to a working copy
API = "api"  # OCP 3.1.1; api-4.2's OBProxy samples have the same keys

# Values whose keys are data, not fields: a task context's variables.
OPAQUE = frozenset({"stringMap", "listMap"})

# Samples that are not JSON and that no tolerant reading can repair; fixed by hand.
FIXES = {
    "1000.task-management-interface/600.retry-a-subtask": (
        'The sample opens `"data": {` and closes it at once (`},`), then lists the subtask\'s '
        "fields at the envelope's level. Fixed: those fields are the members of `data`, as the "
        "page's table (data = SubtaskInstance) says."
    ),
}


def _tolerant(text: str) -> Any:
    """JSON as the docs write it: `//` and `/* */` comments, `...` elisions and trailing commas
    are dropped before parsing (none of them occurs inside the samples' strings)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'(?m)^(\s*(?:[^"\n]*"[^"\n]*")*[^"\n]*?)//.*$', r"\1", text)
    text = re.sub(r"(?m)^\s*\.\.\.\s*,?\s*$", "", text)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


def sample_blocks(markdown: str) -> list[str]:
    """The fenced blocks after the page's `Sample response` heading."""
    found = re.search(r"sample response", markdown, re.I)
    if found is None:
        return []
    return re.findall(r"```[^\n]*\n(.*?)```", markdown[found.end() :], re.S)


def _fix_retry_subtask(text: str) -> Any:
    opened = text.index('"data": {')
    closed = text.index("},", opened)
    fields_end = text.index('"duration"')
    subtask = "{" + text[closed + 2 : fields_end].rstrip().rstrip("},").rstrip() + "}"
    envelope = "{" + text[fields_end:]
    document = _tolerant(envelope)
    return {"data": _tolerant(subtask), **document}


def parse_page(name: str, markdown: str) -> Any | None:
    """The first sample response of a page as JSON; None when it is not JSON (plain text)."""
    blocks = sample_blocks(markdown)
    if not blocks:
        return None
    text = blocks[0]
    if name == "1000.task-management-interface/600.retry-a-subtask":
        return _fix_retry_subtask(text)
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    return _tolerant(stripped)


def vendored(name: str) -> Any:
    """The vendored sample response of a page (`<module dir>/<page>`, no `.md`)."""
    document = json.loads((SAMPLES / f"{name}.json").read_text())
    return document["response"]


def vendor(docs: Path) -> list[str]:
    """Write tests/api/samples/ from the docs; returns the pages written."""
    written = []
    for page in sorted((docs / API).rglob("*.md")):
        name = page.relative_to(docs / API).with_suffix("").as_posix()
        response = parse_page(name, page.read_text())
        if response is None:
            continue
        target = SAMPLES / f"{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "source": f"ocp-doc V3.1.1 en-US/500.api-reference/{name}.md (Sample response)",
            "fixed": FIXES.get(name),
            "response": response,
        }
        target.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        written.append(name)
    return written


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key of a JSON document as a dotted path; a list's items share `[]`, and are all
    walked, so a key of any item counts. The members of OPAQUE values are not walked."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, member in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            if key not in OPAQUE:
                found |= key_paths(member, path)
    elif isinstance(value, list):
        for item in value:
            found |= key_paths(item, f"{prefix}[]")
    return found


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS
    for written_name in vendor(source):
        print(written_name)
