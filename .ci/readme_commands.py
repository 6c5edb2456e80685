"""Print one of README.md's marked code blocks: the block right after ``<!-- ci: NAME -->``
(``generate``, ``test``, ``python``, ``quickstart``), so CI and tests run exactly what users read.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(name: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- ci: {re.escape(name)} -->\s*```[a-z]*\n(.*?)```", text, re.S)
    if not m:
        raise LookupError(f"README.md has no code block marked <!-- ci: {name} -->")
    return m.group(1).strip()


if __name__ == "__main__":
    try:
        print(readme_block(sys.argv[1]))
    except LookupError as exc:
        sys.exit(str(exc))
