"""What `azc simplify` shows: the smallest equivalent program, and what became of each line.

The optimizer (azc.passes) rewrites a program; this module replays its removing and folding
passes while remembering where each surviving instruction came from, so that the original's
lines can be marked kept, removed (dead) or folded (replaced by the constant it computes).
"""

from dataclasses import dataclass, replace

from azc.ir import COMPONENTS, Program
from azc.passes import PIPELINE, eliminate_dead_code, fold_constants, needed
from azc.printer import format_instruction

KEPT, REMOVED, FOLDED = "kept", "removed", "folded"


@dataclass(frozen=True)
class Simplification:
    """A program, its optimized form, and per original instruction its fate.

    `fates[c][i]` is (KEPT | REMOVED | FOLDED, the folded instruction's text or None).
    """

    original: Program
    simplified: Program
    fates: tuple[tuple[tuple[str, str | None], ...], ...]

    def count(self, fate: str) -> int:
        return sum(f == fate for component in self.fates for f, _ in component)

    def lines(self) -> list[tuple[str | None, str]]:
        """(fate or None for a header, text) for every line of the original program."""
        lines = []
        for name, component, fates in zip(COMPONENTS, self.original.components(), self.fates,
                                          strict=True):
            lines.append((None, f"def {name}():"))
            for instruction, (fate, folded) in zip(component, fates, strict=True):
                text = format_instruction(instruction)
                lines.append((fate, text if folded is None else f"{text}  ->  {folded}"))
            if not component:
                lines.append((KEPT, "pass"))
        return lines


def simplify(program: Program, records: list | None = None,
             dump_after: frozenset = frozenset()) -> Simplification:
    """Optimize `program`, tracing which original instructions were removed or folded.

    `records` and `dump_after` go to the pass manager (see azc.passes.PassManager).
    """
    fates = [[(KEPT, None)] * len(c) for c in program.components()]
    origins = [list(range(len(c))) for c in program.components()]
    current = program
    while True:
        # Dead code: forget the origins of instructions that go.
        flags = needed(current)
        for c, keep in enumerate(flags):
            for origin, k in zip(origins[c], keep, strict=True):
                if not k:
                    fates[c][origin] = (REMOVED, None)
            origins[c] = [o for o, k in zip(origins[c], keep, strict=True) if k]
        current = eliminate_dead_code(current)

        # Folding replaces instructions one for one; a fold can make more code dead.
        folded = fold_constants(current)
        if folded is current:
            break
        for c, (before, after) in enumerate(zip(current.components(), folded.components(),
                                                strict=True)):
            for origin, old, new in zip(origins[c], before, after, strict=True):
                if old is not new:
                    fates[c][origin] = (FOLDED, format_instruction(new))
        current = folded
    manager = replace(PIPELINE, dump_after=PIPELINE.dump_after | frozenset(dump_after))
    return Simplification(program, manager.run(program, records), tuple(map(tuple, fates)))


def pass_names() -> list[str]:
    """The optimizer's passes, in pipeline order."""
    return [step.name for step in PIPELINE.passes]
