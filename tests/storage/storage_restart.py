"""Shared check: a management node killed mid-run loses no flushed sample and a new one resumes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from consolidator.storage import open_store

WRITER = textwrap.dedent("""
    import sys
    from consolidator.domain.samples import HostSample
    from consolidator.storage import open_store
    store = open_store(sys.argv[1])
    start = int(float(store.resume_state().last_t_s or -1)) + 1
    for t in range(start, start + 100000):
        store.write_host_samples([HostSample(float(t), f"pm{i}", 0.5) for i in range(50)])
        store.flush()
        print(t, flush=True)
""")


def check_kill_and_resume(url: str) -> None:
    """Run a writer that flushes 50 host samples per tick, SIGKILL it after 40 ticks, twice; then
    every tick reported flushed is stored, with no gap across the restart and nothing twice."""
    last_flushed = -1
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for _ in range(40):
            last_flushed = int(proc.stdout.readline())
        proc.kill()
        proc.wait()
    with open_store(url) as store:
        ticks = {s.t_s for s in store.host_window("pm49", 0.0, 1e9)}
        assert set(range(last_flushed + 1)) <= ticks
        assert store.count("host_samples") == 50 * len(ticks)
