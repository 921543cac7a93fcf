"""Islands as Ray actors, on a Ray cluster started on this machine (loopback, no dashboard)."""

import pytest

from azc.islands import IslandSearch
from azc.search import Monitor
from tests.test_islands import experiment

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_deterministic_islands_find_the_same_program_as_actors_and_as_processes(cluster):
    from azc.ray_islands import RayIslands

    results = []
    for on_ray in (True, False):
        search = IslandSearch(experiment(), 5, islands=2, engine="reference")
        if on_ray:
            search.transport = RayIslands(2, search.setup())
        results.append(search.run().summary())
    actors, processes = results
    assert actors["best_program"] == processes["best_program"]
    assert actors["select_fitness"] == processes["select_fitness"]
    assert actors["individuals"] == processes["individuals"]


class ActorKiller(Monitor):
    """Kills island 0's actor after its second report (so after a checkpoint)."""

    def __init__(self):
        self.search, self.reports, self.killed = None, 0, False

    def progress(self, record):
        if record.get("island") == 0 and "event" not in record and not self.killed:
            self.reports += 1
            if self.reports == 2:
                self.killed = True
                self.search.transport.kill(0)


def test_a_killed_actor_is_restarted(cluster):
    from azc.ray_islands import RayIslands

    killer = ActorKiller()
    exp = experiment(**{"max_experiments = 2": "max_experiments = 1"})
    search = IslandSearch(exp, 6, islands=2, engine="reference", checkpoint_seconds=0,
                          progress_seconds=0.1, monitors=[killer])
    search.transport = RayIslands(2, search.setup())
    killer.search = search
    outcome = search.run()
    assert killer.killed and outcome.restarts == 1 and not outcome.interrupted
    assert outcome.program is not None
