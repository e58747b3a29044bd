"""Clocks that say when they shared the machine: a busy neighbour flags the stretch, and the
report's cost of a configuration comes from epochs that ran alone."""
import subprocess
import sys
import time

import pytest

from sslnb.clock import CONTENDED_CORES, ShareClock, isolated_epoch_time


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_neighbour_flags_the_clock():
    """Another process spinning a core while we wait: its CPU is 'others', and the stretch is
    flagged as contended; our own spinning is ours, not others'."""
    spin = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass\n"
    clock = ShareClock()
    neighbour = subprocess.Popen([sys.executable, "-c", spin])
    neighbour.wait(timeout=60)
    shared = clock.read()
    assert shared["measured_by"] == "proc_stat"
    assert shared["others_cores"] > CONTENDED_CORES and shared["contended"] is True
    clock.start()
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:  # our own work
        pass
    own = clock.read()
    assert own["process_cores"] > 0.8
    assert own["others_cores"] < shared["others_cores"]


def test_the_cost_is_the_median_of_epochs_that_ran_alone():
    epochs = [{"epoch_time_s": 60.0, "contended": False}, {"epoch_time_s": 320.0, "contended": True},
              {"epoch_time_s": 70.0, "contended": False}, {"epoch_time_s": 66.0, "contended": False}]
    assert isolated_epoch_time(epochs) == (66.0, 3, 1)
    assert isolated_epoch_time(epochs[1:2]) == (None, 0, 1)
    legacy = [{"epoch_time_s": 60.0}]  # logged before clocks were checked: no cost stated
    assert isolated_epoch_time(legacy) == (None, 0, 0)
