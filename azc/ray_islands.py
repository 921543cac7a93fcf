"""Islands as Ray actors: the island model of azc.islands on many machines.

    pip install "azc[ray]"          # on the driver and on every node of the cluster
    azc evolve --ray auto           # this machine's cluster (started here if none runs)
    azc evolve --ray HOST:6379      # a running cluster

Each island is an actor (one CPU) built from the experiment's text and its seed; commands and
answers are the same JSON text as between worker processes, so only this transport differs.
Migration goes through the driver, which keeps the run directory. An actor that dies is
replaced by a new one restored from the island's last checkpoint, as a dead process is.
Ray is imported only here, so azc works without it.
"""

import logging
import traceback

from azc.errors import AzcError

log = logging.getLogger("azc")


def _ray():
    try:
        import ray
    except ImportError:
        raise AzcError('--ray needs Ray, an optional dependency: pip install "azc[ray]"') \
            from None
    return ray


def connect(address: str) -> int:
    """Join (or, for "auto" with none running, start) a Ray cluster; its number of CPUs.

    A cluster started here binds this machine's loopback only and has no dashboard.
    """
    ray = _ray()
    if not ray.is_initialized():
        if address == "auto":
            try:
                ray.init(address="auto", log_to_driver=False)
            except (ConnectionError, RuntimeError):
                ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _IslandActor:
    """An actor holding one island (azc.island.Island)."""

    def __init__(self, island: int, setup: str):
        import gc
        import json

        from azc.island import Island, experiment_from_text

        gc.disable()  # NOTE: for the actor's life, not per command: see Island.handle
        setup = json.loads(setup)
        self.index, self.island, self.failure = island, None, None
        try:  # as a worker process does: an island that cannot be built answers with the error
            experiment = experiment_from_text(setup["experiment"], setup["path"],
                                              setup.get("folder"))
            self.island = Island(experiment, island, setup["seeds"][island], setup["engine"])
        except Exception:
            self.failure = traceback.format_exc()

    def handle(self, message: str) -> str:
        import json

        try:
            if self.failure is not None:
                raise RuntimeError(f"the island could not be built:\n{self.failure}")
            return self.island.handle(message)
        except Exception:
            return json.dumps({"island": self.index, "error": traceback.format_exc()})

    def pid(self) -> int:
        import os

        return os.getpid()


class RayIslands:
    """The transport of azc.islands.IslandSearch, with Ray actors instead of processes."""

    def __init__(self, count: int, setup: dict):
        import json

        ray = self.ray = _ray()
        self.setup = json.dumps(setup)
        self.actor_class = ray.remote(num_cpus=1, max_restarts=0)(_IslandActor)
        self.actors = [None] * count
        self.calls: dict = {}  # ObjectRef of a running command -> island

    def start(self, island: int):
        """Start (or restart) the island's actor."""
        if self.actors[island] is not None:
            self.ray.kill(self.actors[island])
        self.actors[island] = self.actor_class.remote(island, self.setup)

    def pid(self, island: int) -> int:
        return self.ray.get(self.actors[island].pid.remote())

    def kill(self, island: int):
        """End the island's actor at once, as a crash would (for tests)."""
        self.ray.kill(self.actors[island], no_restart=True)

    def send(self, island: int, message: str):
        self.calls[self.actors[island].handle.remote(message)] = island

    def wait(self, timeout: float) -> list[tuple[int, str | None]]:
        """Answers that arrived (island, text), or (island, None) for a dead actor."""
        if not self.calls:
            return []
        ready, rest = self.ray.wait(list(self.calls), num_returns=1, timeout=timeout)
        if ready and rest:  # take every answer already there
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        answers = []
        for ref in ready:
            island = self.calls.pop(ref)
            try:
                answers.append((island, self.ray.get(ref)))
            except self.ray.exceptions.RayActorError:
                answers.append((island, None))
        return answers

    def close(self):
        for actor in self.actors:
            if actor is not None:
                self.ray.kill(actor)
        self.actors = [None] * len(self.actors)
        self.calls.clear()
