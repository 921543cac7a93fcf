"""LLVM plumbing shared by the native tiers: optimize IR text and load it into an LLJIT.

    module = parse IR text; verify; run the new pass manager (O1..O3); emit an object file
    library = link the object into the process-wide LLJIT with the C library visible
    addresses = the exported functions; they stay valid while the Library is referenced

Each Library owns an LLJIT resource tracker, so dropping it frees its code: compiling many
programs one after another keeps memory flat (MCJIT would leak, see DESIGN.md).
"""

import itertools
import logging
import threading

import llvmlite.binding as llvm

log = logging.getLogger("azc")

_lock = threading.Lock()
_state: dict = {}
_names = itertools.count()
LINKS_PER_JIT = 200


def _machine(codegen: int = 2):
    """The host target machine at a code generation level (0-3), made on first use."""
    if codegen not in _state:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        _state[codegen] = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=codegen, codemodel="jitdefault", jit=True)
    return _state[codegen]


def _target():
    """The host target machine and the current LLJIT, made on first use.

    NOTE: every linked library leaves a JITDylib (~65 KB) in its LLJIT even after its resource
    tracker frees the code, so an LLJIT takes LINKS_PER_JIT libraries and is then replaced;
    each Library keeps its LLJIT alive, and a retired LLJIT is freed with its last library.
    """
    machine = _machine(2)
    if "jit" not in _state or _state["links"] >= LINKS_PER_JIT:
        _state["jit"] = llvm.create_lljit_compiler(llvm.Target.from_default_triple()
                                                   .create_target_machine(jit=True))
        _state["links"] = 0
    return machine, _state["jit"]


def host_triple_and_layout() -> tuple[str, str]:
    """The triple and data layout lines a module for this host starts with."""
    machine, _ = _target()
    return machine.triple, str(machine.target_data)


class Library:
    """Compiled code: the exported functions' addresses, alive while this object is."""

    def __init__(self, tracker, addresses: dict[str, int], jit):
        self._tracker = tracker
        self._jit = jit  # dropped after the tracker: the LLJIT outlives its libraries
        self.addresses = addresses

    def __del__(self):
        self._tracker = None
        self._jit = None

    def __getitem__(self, name: str) -> int:
        return self.addresses[name]


# Pass lists built once and reused: a PassBuilder's own pipeline leaks ~60 KB per module it
# optimizes (llvmlite 0.50), which matters when tier 2 compiles many thousands of programs.
# NOTE: no pass here may reorder floating-point arithmetic (no reassociate, no fast-math).
_PIPELINES = {
    "light": ("sroa", "instruction_combine", "simplify_cfg"),
    "loops": ("sroa", "instruction_combine", "simplify_cfg", "loop_simplify", "lcssa",
              "loop_rotate", "loop_unroll", "sroa", "instruction_combine", "new_gvn",
              "dead_store_elimination", "simplify_cfg"),
}


def _pipeline(name: str, machine):
    key = ("pipeline", name)
    if key not in _state:
        passes = llvm.create_new_module_pass_manager()
        for step in _PIPELINES[name]:
            getattr(passes, f"add_{step}_pass")()
        _state[key] = (passes, llvm.create_pass_builder(machine, llvm.PipelineTuningOptions(0)))
    return _state[key]


def compile_ir(text: str, exports: list[str], *, speed: int | str = 2,
               codegen: int = 2) -> Library:
    """Optimize IR text and load it. `speed` is a pass pipeline level (0 = no IR passes) or
    a name of _PIPELINES ("light": registers from allocas, instruction combining, CFG cleanup;
    "loops": also unrolls loops and removes redundant loads and stores); `codegen` is the
    back end's level.

    Raises RuntimeError with LLVM's message if the IR does not parse or verify.
    """
    with _lock:
        machine, jit = _target()
        # A context per module: constants interned in the global one would never be freed.
        context = llvm.create_context()
        module = llvm.parse_assembly(text, context)
        module.verify()
        if speed in _PIPELINES:
            passes, builder = _pipeline(speed, machine)
            passes.run(module, builder)
        elif speed > 0:
            tuning = llvm.PipelineTuningOptions(speed_level=speed)
            builder = llvm.create_pass_builder(machine, tuning)
            builder.getModulePassManager().run(module, builder)
        obj = _machine(codegen).emit_object(module)
        del module
        library = (llvm.JITLibraryBuilder().add_object_img(obj).add_current_process())
        for name in exports:
            library.export_symbol(name)
        tracker = library.link(jit, f"azc{next(_names)}")
        _state["links"] += 1
    if log.isEnabledFor(5):
        log.log(5, "compiled module:\n%s", text)
    return Library(tracker, {name: tracker[name] for name in exports}, jit)
