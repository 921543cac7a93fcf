"""Islands in worker processes on this machine: the transport of `azc evolve --workers N`.

    transport.start(island)          spawn (or respawn) the island's worker
    transport.send(island, text)     one JSON command (azc.island)
    transport.wait(timeout)          [(island, answer text)], or (island, None) if it died

Each worker holds one azc.island.Island and answers commands until told to stop. Messages are
JSON text over pipes (bytes, never pickled objects). Workers are spawned, not forked: the
driver may hold threads (the live view) and compiled code. A worker ignores Ctrl-C: the driver
handles it and stops its workers.
"""

import gc
import json
import multiprocessing
import signal
import traceback
from multiprocessing.connection import wait as wait_for

from azc.island import Island, experiment_from_text


class ProcessIslands:
    """Islands in worker processes on this machine; JSON text over pipes, nothing pickled.

    Workers are spawned (not forked): the driver may hold threads and compiled code.
    """

    def __init__(self, count: int, setup: dict):
        self.context = multiprocessing.get_context("spawn")
        self.setup = json.dumps(setup)
        self.processes = [None] * count
        self.pipes = [None] * count
        self.busy = [False] * count
        self.lost: set[int] = set()  # died while idle: reported by the next wait

    def start(self, island: int):
        """Start (or restart) the island's worker process."""
        self._stop(island)
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(child, island, self.setup),
                                       name=f"azc-island-{island}", daemon=True)
        process.start()
        child.close()
        self.processes[island], self.pipes[island] = process, parent
        self.lost.discard(island)

    def pid(self, island: int) -> int:
        return self.processes[island].pid

    def send(self, island: int, message: str):
        self.busy[island] = True
        try:
            self.pipes[island].send_bytes(message.encode())
        except OSError:  # the worker is gone: its death is reported by the next wait
            self.lost.add(island)

    def wait(self, timeout: float) -> list[tuple[int, str | None]]:
        """Answers that arrived (island, text), or (island, None) for a dead worker."""
        busy = [i for i, b in enumerate(self.busy) if b]
        answers = [(i, None) for i in busy if i in self.lost]
        if answers:
            for island, _ in answers:
                self.busy[island] = False
            return answers
        handles = [self.pipes[i] for i in busy] + [self.processes[i].sentinel for i in busy]
        ready = set(wait_for(handles, timeout)) if handles else set()
        for island in busy:
            pipe, process = self.pipes[island], self.processes[island]
            if pipe in ready or process.sentinel in ready:
                try:
                    answers.append((island, pipe.recv_bytes().decode()))
                except (EOFError, OSError):
                    answers.append((island, None))
                self.busy[island] = False
        return answers

    def _stop(self, island: int):
        process = self.processes[island]
        if process is None:
            return
        try:
            self.pipes[island].send_bytes(b'{"command": "stop"}')
        except OSError:
            pass
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        self.pipes[island].close()
        self.processes[island] = None

    def close(self):
        for island in range(len(self.processes)):
            self._stop(island)


def _worker(pipe, island: int, setup: str):
    """A worker process: one island, answering commands until told to stop."""
    # The driver handles Ctrl-C and SIGTERM (sent to the whole group by a terminal or a job
    # scheduler) and stops us once it has what it needs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.disable()  # NOTE: for the worker's life, not per command: see Island.handle
    setup = json.loads(setup)
    # An island that cannot be built (say, its data files are missing here) answers with the
    # error: a worker that died instead would be restarted, to fail again.
    worker, failure = None, None
    try:
        experiment = experiment_from_text(setup["experiment"], setup["path"],
                                          setup.get("folder"))
        worker = Island(experiment, island, setup["seeds"][island], setup["engine"])
    except Exception:
        failure = traceback.format_exc()
    while True:
        try:
            message = pipe.recv_bytes().decode()
        except (EOFError, OSError):
            return
        if json.loads(message)["command"] == "stop":
            return
        try:
            if failure is not None:
                raise RuntimeError(f"the island could not be built:\n{failure}")
            answer = worker.handle(message)
        except Exception:
            answer = json.dumps({"island": island, "error": traceback.format_exc()})
        try:
            pipe.send_bytes(answer.encode())
        except OSError:  # the driver is gone
            return
