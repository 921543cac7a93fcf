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


def _target():
    """The host target machine and the process's LLJIT, made on first use."""
    if not _state:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        machine = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=2, codemodel="jitdefault", jit=True)
        _state["machine"] = machine
        _state["jit"] = llvm.create_lljit_compiler(machine)
    return _state["machine"], _state["jit"]


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


def compile_ir(text: str, exports: list[str], *, speed: int = 2) -> Library:
    """Optimize IR text at the given speed level (0 = no IR passes) and load it.

    Raises RuntimeError with LLVM's message if the IR does not parse or verify.
    """
    with _lock:
        machine, jit = _target()
        module = llvm.parse_assembly(text)
        module.verify()
        if speed > 0:
            tuning = llvm.PipelineTuningOptions(speed_level=speed)
            builder = llvm.create_pass_builder(machine, tuning)
            builder.getModulePassManager().run(module, builder)
        obj = machine.emit_object(module)
        library = (llvm.JITLibraryBuilder().add_object_img(obj).add_current_process())
        for name in exports:
            library.export_symbol(name)
        tracker = library.link(jit, f"azc{next(_names)}")
    if log.isEnabledFor(5):
        log.log(5, "compiled module:\n%s", text)
    return Library(tracker, {name: tracker[name] for name in exports})
