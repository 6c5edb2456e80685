"""Print one of README.md's set-up commands: the shell block right after the marker comment
``<!-- ci: NAME -->`` (NAME is ``generate`` or ``test``), so CI runs exactly what users read."""

import re
import sys
from pathlib import Path

name = sys.argv[1]
text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
m = re.search(rf"<!-- ci: {re.escape(name)} -->\s*```(?:bash|sh)\n(.*?)```", text, re.S)
if not m:
    sys.exit(f"README.md has no command marked <!-- ci: {name} -->")
print(m.group(1).strip())
