"""Export an algorithm as a standalone Python module that needs only NumPy.

    azc export linear_regression.az --to numpy -o linear_regression.py

The module holds the program as a class `Algorithm`: its memory as attributes named by azc's
addresses (s1 the prediction; s2, v1, m0 ... as in the program), and one method per component
function, `setup()`, `predict(features)` and `learn(features, label)`, each instruction a line of
NumPy under a comment with its azc text. After the class come the helpers `fit`, `predict` and
`fitness`, and the runtime the ops need (azc/numpy_runtime.py, copied verbatim). The statement of
each op comes from the op table (ops.NUMPY_SOURCE), so the exported module computes what azc's
executor computes, random draws included, and scores the same fitness.

Dead code goes first (passes.eliminate_dead_code, which keeps addresses as they are, so the
exported lines match the program's text); the other passes would rename addresses.
"""

import logging
import textwrap
from dataclasses import dataclass
from pathlib import Path

from azc.errors import ConfigError, DataError
from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, Program
from azc.ops import NUMPY_SOURCE, OPS, M, S, V
from azc.parse import parse_file
from azc.passes import eliminate_dead_code
from azc.printer import format_instruction

log = logging.getLogger("azc")

TARGETS = ("numpy",)
RUNTIME = Path(__file__).with_name("numpy_runtime.py")
MARKER = "# --- exported from here"
KINDS = (S, V, M)
RESERVED = ((S, LABEL), (V, FEATURES))  # set anew before every Predict and Learn
METHOD, BODY = " " * 4, " " * 8

# What the reserved addresses hold when each component starts, in the exported methods.
START = {
    "setup": {(S, LABEL): "np.float64(0.0)", (V, FEATURES): "np.zeros(self.F)"},
    "predict": {(S, LABEL): "np.float64(0.0)", (V, FEATURES): "vector(features, self.F)"},
    "learn": {(S, LABEL): "np.float64(label)", (V, FEATURES): "vector(features, self.F)"},
}
SIGNATURES = {
    "setup": ("setup(self)", "Setup: runs once, on zeroed memory (the constructor calls it)."),
    "predict": ("predict(self, features)",
                "Predict: the prediction s1 for one example (v0 = features, s0 = 0)."),
    "learn": ("learn(self, features, label)",
              "Learn: one update from an example (v0 = features, s0 = label, s1 as Predict "
              "left it)."),
}


@dataclass(frozen=True)
class Export:
    """An exported module's source, and how many dead instructions were left out of it."""

    source: str
    removed: int


def export_file(path, target: str = "numpy", output=None, optimize: bool = True) -> Export:
    """Export the program in an .az file; write it to `output` unless that is None."""
    if target not in TARGETS:
        raise ConfigError(f"unknown export target {target!r}; known targets: "
                          + ", ".join(TARGETS))
    path = Path(path)
    program = parse_file(path)
    exported = export_numpy(program, path.name, _header_comment(path), optimize=optimize)
    if output is not None:
        try:
            Path(output).write_text(exported.source, encoding="utf-8")
        except OSError as error:
            raise DataError(f"{output}: cannot write it ({error.strerror or error})") from None
        log.info("exported %s to %s", path, output)
    return exported


def export_numpy(program: Program, name: str = "algorithm", description: str = "",
                 optimize: bool = True) -> Export:
    """The source of a standalone NumPy module that runs `program` as azc does."""
    live = eliminate_dead_code(program) if optimize else program
    removed = len(program) - len(live)
    parts = [_docstring(name, description, removed), "import math\n\nimport numpy as np\n",
             _class(live, name), _runtime()]
    return Export("\n\n".join(parts), removed)


# --- the class ---------------------------------------------------------------------------------


def _ordered(places) -> list[tuple[str, int]]:
    return sorted(places, key=lambda place: (KINDS.index(place[0]), place[1]))


def _name(place: tuple[str, int]) -> str:
    return f"{place[0]}{place[1]}"


def _names(places) -> str:
    return ", ".join(_name(place) for place in places)


def _memory(program: Program) -> list[tuple[str, int]]:
    """The addresses kept between calls: s1 and every one a component reads before writing it.

    Every other address is a temporary, written before it is read wherever it is used, so it
    stays a local of the methods that use it.
    """
    kept = {(S, PREDICTION)}
    for component in program.components():
        kept.update(_traffic(component)[0])
    return _ordered(kept - set(RESERVED))


def _class(program: Program, name: str) -> str:
    memory = _memory(program)
    zeros = {S: "np.float64(0.0)", V: "np.zeros(features_size)",
             M: "np.zeros((features_size, features_size))"}
    about = textwrap.wrap(
        f"Memory between calls, named by azc's addresses: {_names(memory)}; s1 is the "
        "prediction. s0 (the label) and v0 (the features) are set anew before every Predict "
        "and Learn; other addresses are temporaries, locals of the methods.",
        width=96, initial_indent=METHOD, subsequent_indent=METHOD)
    lines = [
        "class Algorithm:",
        f'{METHOD}"""{name}: its memory, and its component functions as methods.',
        "",
        *about,
        f'{METHOD}"""',
        "",
        f"{METHOD}def __init__(self, features_size, seed=0, task_index=0):",
        f'{BODY}"""Zeroed memory for vectors of `features_size`, then Setup; random ops draw '
        "from",
        f"{BODY}azc's stream for (seed, task_index), as azc evaluates task `task_index`.\"\"\"",
        f"{BODY}self.F = features_size",
        f"{BODY}self.rng = Stream(seed, task_index)",
        *(f"{BODY}self.{_name(place)} = {zeros[place[0]]}" for place in memory),
        f"{BODY}self.setup()",
    ]
    for component, instructions in zip(("setup", "predict", "learn"), program.components(),
                                       strict=True):
        lines += [""] + _method(component, instructions, set(memory))
    return "\n".join(lines) + "\n"


def _method(component: str, instructions: tuple[Instruction, ...], memory: set) -> list[str]:
    """One component function as a method: load memory, run the instructions, store memory."""
    loads, written = _traffic(instructions)
    signature, doc = SIGNATURES[component]
    lines = [f"{METHOD}def {signature}:", f'{BODY}"""{doc}"""']

    # Locals named by address: the reserved ones as the executor sets them, the rest from memory.
    for place in RESERVED:
        if place in loads:
            lines.append(f"{BODY}{_name(place)} = {START[component][place]}")
    for kind in KINDS:
        places = [place for place in _ordered(loads) if place[0] == kind and place in memory]
        lines += _assignments([_name(place) for place in places],
                              [f"self.{_name(place)}" for place in places])

    body = []
    for instruction in instructions:
        body.append(f"# {format_instruction(instruction)}")
        if instruction.op != 0:
            body.append(_statement(instruction))
    if any(not line.startswith("#") for line in body):
        lines.append(f"{BODY}with np.errstate(all=\"ignore\"):  # IEEE inf and nan, quietly")
        lines += [f"{BODY}    {line}" for line in body]
    else:
        lines += [f"{BODY}{line}" for line in body]

    for kind in KINDS:
        places = [place for place in _ordered(written) if place[0] == kind and place in memory]
        lines += _assignments([f"self.{_name(place)}" for place in places],
                              [_name(place) for place in places])
    if component == "predict":
        lines.append(f"{BODY}return self.s1")
    return lines


def _assignments(targets: list[str], values: list[str], per_line: int = 4) -> list[str]:
    """`a, b = c, d` lines, a few names per line."""
    lines = []
    for i in range(0, len(targets), per_line):
        left, right = ", ".join(targets[i:i + per_line]), ", ".join(values[i:i + per_line])
        lines.append(f"{BODY}{left} = {right}")
    return lines


def _traffic(instructions) -> tuple[list, set]:
    """(addresses read before the component writes them whole, addresses it writes)."""
    loads, written = [], set()
    for instruction in instructions:
        op = OPS[instruction.op]
        target = instruction.writes()
        reads = list(instruction.reads())
        if op.data in ("vindex", "mindex"):  # writes one entry: the rest of the old value stays
            reads.append(target)
        for place in reads:
            if place not in written and place not in loads:
                loads.append(place)
        if target:
            written.add(target)
    return loads, written


def _statement(instruction: Instruction) -> str:
    """The op's NumPy statement with this instruction's addresses and data filled in."""
    op = OPS[instruction.op]
    fields = {"out": f"{op.out}{instruction.out}", "F": "self.F", "rng": "self.rng"}
    addresses = (instruction.in1, instruction.in2)[:op.arity]
    for slot, kind, address in zip(("a", "b")[:op.arity], op.ins, addresses, strict=True):
        fields[slot] = f"{kind}{address}"
    for k, value in enumerate(instruction.data):
        fields[f"d{k}"] = repr(float(value))  # NOTE: repr round-trips every double exactly
    return NUMPY_SOURCE[op.id].format(**fields)


# --- the module around it ----------------------------------------------------------------------


def _docstring(name: str, description: str, removed: int) -> str:
    about = f"\n{description}\n" if description else ""
    dead = (f" azc's dead-code pass left out {removed} instruction(s) that cannot change the "
            "prediction." if removed else "")
    notes = textwrap.fill(
        "Each method of Algorithm is one of the program's component functions, each line one "
        "azc instruction, written in a comment above it; the names are azc's addresses (s1 the "
        f"prediction, s0 the label, v0 the features).{dead} For classifiers (azc's accuracy "
        "tasks, labels 0 and 1), pass classifier=True to fit and eval_type=\"accuracy\" to "
        "fitness; s1 is then a logit.", width=96)
    return f'''"""{name}, exported by azc as a standalone module that needs only NumPy.
{about}
    model = Algorithm(features_size=4, seed=0)   # zeroed memory, then Setup
    fit(model, train_x, train_y, epochs=1)      # Predict, then Learn, per example
    predictions = predict(model, valid_x)        # Predict only: the values of s1
    score = fitness(train_x, train_y, valid_x, valid_y)   # azc's fitness on this task

{notes}
"""'''


def _header_comment(path: Path) -> str:
    """The comment lines an .az file starts with, without their `#`, for the docstring."""
    lines = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines).replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()


def _runtime() -> str:
    text = RUNTIME.read_text(encoding="utf-8")
    return text[text.index(MARKER) + len(MARKER):].split("\n", 1)[1].lstrip("\n")
