"""CPU-time measurement for the single-process DSP benchmarks: pin to one core, and time
candidates in turns so a change in the machine's load hits every side alike."""

from __future__ import annotations

import os
import resource
import statistics
import time

# On import, before the importer loads numpy: one core for everything, pinned before numpy
# starts its BLAS threads (threads inherit the affinity only from the thread that creates
# them), and one BLAS thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def pin_to_one_cpu() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def cpu_now() -> float:
    """CPU seconds of this process plus its waited-for children (ffmpeg)."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


def interleaved(fns, runs: int) -> list[tuple[float, float]]:
    """For each fn, (median wall seconds, median CPU seconds) over `runs` rounds, the fns taking
    turns within each round. Pinned to one core, CPU seconds are the time that core spent on
    the job: the machine may be shared, and a neighbour's load stretches wall time without
    saying anything about the code measured."""
    walls = [[] for _ in fns]
    cpus = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start, cpu = time.perf_counter(), cpu_now()
            fn()
            walls[i].append(time.perf_counter() - start)
            cpus[i].append(cpu_now() - cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus)]
