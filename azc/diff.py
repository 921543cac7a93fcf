"""Differences between two programs, component by component, as unified-diff lines.

With `simplify`, both programs first go through the optimizer (dead code removed, canonical
names), so the diff shows what changed in what the programs compute.
"""

import difflib

from azc.ir import COMPONENTS, Program
from azc.printer import format_component


def program_diff(old: Program, new: Program, simplify: bool = False) -> list[str]:
    """Lines of a unified diff from `old` to `new`; empty if their texts are equal."""
    if simplify:
        from azc.passes import optimize

        old, new = optimize(old), optimize(new)
    lines = []
    for name, a, b in zip(COMPONENTS, old.components(), new.components(), strict=True):
        before = format_component(name, a).splitlines()
        after = format_component(name, b).splitlines()
        if before == after:
            continue
        diff = difflib.unified_diff(before, after, lineterm="", n=len(before) + len(after))
        lines.extend(line for line in diff if not line.startswith(("---", "+++", "@@")))
    return lines
