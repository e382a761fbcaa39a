"""``make lint``: the source checks pyflakes does not make. Prints each finding as FILE:LINE: what,
and exits non-zero when there is one.

- Lines are at most MAX_LINE characters (the limit the code keeps).
- Numba is imported only under lmtool/kernels/: the rest of the package must import (and the
  command line start) without it.
"""

import ast
import pathlib
import sys

MAX_LINE = 120
ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECKED = ("lmtool", "tests", "bench", ".ci")
KERNELS = ROOT / "lmtool" / "kernels"


def findings():
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            shown = path.relative_to(ROOT)
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), 1):
                if len(line) > MAX_LINE:
                    yield f"{shown}:{number}: line of {len(line)} characters (at most {MAX_LINE})"
            if top == "lmtool" and KERNELS not in path.parents:
                for node in ast.walk(ast.parse(text, str(shown))):
                    names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                             else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                    if any(name == "numba" or name.startswith("numba.") for name in names):
                        yield f"{shown}:{node.lineno}: imports numba outside lmtool/kernels/"


def main():
    found = list(findings())
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
