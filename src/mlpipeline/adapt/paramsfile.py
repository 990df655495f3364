"""Edits of params.yaml that keep its comments and layout (a YAML round trip would lose them)."""

from __future__ import annotations

import re
from typing import Any


def scalar(value: Any) -> str:
    """``value`` as YAML on one line (a list as ``[a, b]``)."""
    import yaml

    return str(yaml.safe_dump(value, default_flow_style=True)).strip().removesuffix("...").strip()


def set_params(text: str, updates: dict[str, dict[str, Any]]) -> str:
    """``text`` (a params.yaml) with ``section.key`` set to each value, comments and layout kept; a missing key is
    added at the top of its section, a missing section at the end."""
    lines = text.splitlines()
    for section, values in updates.items():
        header = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(section)}:\s*(#.*)?$", line)), None)
        if header is None:
            lines += ["", f"{section}:", *(f"  {key}: {scalar(value)}" for key, value in values.items())]
            continue
        end = next((i for i in range(header + 1, len(lines)) if re.match(r"^\S", lines[i])), len(lines))
        for key, value in values.items():
            # The value may quote a '#' (not a comment then); a comment follows whitespace.
            pattern = re.compile(rf"^(\s+){re.escape(key)}:\s*((?:'[^']*'|\"[^\"]*\"|[^#'\"])*?)(\s+#.*)?$")
            found = next((i for i in range(header + 1, end) if pattern.match(lines[i])), None)
            if found is None:
                lines.insert(header + 1, f"  {key}: {scalar(value)}")
                end += 1
                continue
            match = pattern.match(lines[found])
            assert match is not None
            if not match.group(2):  # a block value on the lines below: it is replaced too
                end -= _drop_block(lines, found, len(match.group(1)))
            line, comment = f"{match.group(1)}{key}: {scalar(value)}", (match.group(3) or "").lstrip()
            column = lines[found].index(comment) if comment else 0  # a comment stays in its column
            lines[found] = f"{line.ljust(column - 1)} {comment}" if comment else line
    return "\n".join(lines) + "\n"


def _drop_block(lines: list[str], key_line: int, indent: int) -> int:
    """Remove the block value under ``lines[key_line]`` (deeper lines, or ``- `` items at its indent); how many."""
    removed = 0
    while key_line + 1 < len(lines):
        line = lines[key_line + 1]
        depth = len(line) - len(line.lstrip())
        if not line.strip() or not (depth > indent or (depth == indent and line.lstrip().startswith("- "))):
            break
        del lines[key_line + 1]
        removed += 1
    return removed
