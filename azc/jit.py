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
    """The host target machine and the process's LLJIT, made on first use."""
    machine = _machine(2)
    if "jit" not in _state:
        _state["jit"] = llvm.create_lljit_compiler(_machine(3))
    return machine, _state["jit"]


def host_triple_and_layout() -> tuple[str, str]:
    """The triple and data layout lines a module for this host starts with."""
    machine, _ = _target()
    return machine.triple, str(machine.target_data)


class Library:
    """Compiled code: the exported functions' addresses, alive while this object is."""

    def __init__(self, tracker, addresses: dict[str, int]):
        self._tracker = tracker
        self.addresses = addresses

    def __getitem__(self, name: str) -> int:
        return self.addresses[name]


def compile_ir(text: str, exports: list[str], *, speed: int | str = 2,
               codegen: int = 2) -> Library:
    """Optimize IR text and load it. `speed` is a pass pipeline level (0 = no IR passes) or
    "light" (registers from allocas, instruction combining, CFG cleanup: fast to run);
    `codegen` the back end's level.

    Raises RuntimeError with LLVM's message if the IR does not parse or verify.
    """
    with _lock:
        machine, jit = _target()
        module = llvm.parse_assembly(text)
        module.verify()
        if speed == "light":
            passes = llvm.create_new_module_pass_manager()
            passes.add_sroa_pass()
            passes.add_instruction_combine_pass()
            passes.add_simplify_cfg_pass()
            passes.run(module, llvm.create_pass_builder(machine, llvm.PipelineTuningOptions(0)))
        elif speed > 0:
            tuning = llvm.PipelineTuningOptions(speed_level=speed)
            builder = llvm.create_pass_builder(machine, tuning)
            builder.getModulePassManager().run(module, builder)
        obj = _machine(codegen).emit_object(module)
        library = (llvm.JITLibraryBuilder().add_object_img(obj).add_current_process())
        for name in exports:
            library.export_symbol(name)
        tracker = library.link(jit, f"azc{next(_names)}")
    if log.isEnabledFor(5):
        log.log(5, "compiled module:\n%s", text)
    return Library(tracker, {name: tracker[name] for name in exports})
