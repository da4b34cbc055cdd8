"""numba's threads: fast alone, fair where processes share cores, quiet between steps.

numba runs the parallel loops on its threading layer: tbb where numba can load it, else
GNU OpenMP (omp), else its own workqueue. After a parallel loop, libgomp's threads spin
``GOMP_SPINCOUNT`` times waiting for the next one before they sleep; waking a sleeping
thread costs ~20-50 us on these virtual machines. Measured on the 2-core machine (AMD
EPYC), Adam on 1e5 float32 elements, ``pytest benchmarks/quick/test_quick_threads.py
--benchmark-only``: median step alone (back to back) / each of two processes at once / in
a loop with 0.5 ms of the user's own work between steps, and the CPU the other threads
burn during that work:

* libgomp's own spin (300,000): 41.5 / 8,000 / 45.6 us, 472 us burnt a step;
* ``GOMP_SPINCOUNT=1000``, the parallel loop at every step (fastopt 0.1): 41.5 / 142 /
  59.7 us, 70 us burnt;
* the serial loop: 57.9 / 60.3 / 61.1 us, nothing burnt;
* fastopt's policy (below): 43.2 / 63.3 / 64.8 us, nothing burnt.

The policy: unless the user chose (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set), fastopt
sets ``GOMP_SPINCOUNT=1000`` (~70 us of spinning) before OpenMP starts (no effect when
another library started libgomp in the process first). A bucket moving less than
``PARALLEL_THRESHOLD_BYTES`` a step runs serially; one moving more than
``WARM_THRESHOLD_BYTES`` (kernels/_cpu.py) runs the parallel loop, where waking the
threads costs little against the work. Between the two, ``WarmChooser`` decides at each
call: after the user's own code (the threads asleep) the serial loop, so no thread is
woken to spin while the user's code runs; back to back (threads still spinning) the loop
that has been faster here, which is the serial one when another process holds the cores.

GNU OpenMP is not fork-safe: a child forked after its threads started is killed when it
runs a parallel region ("fork() called from a process already using GNU OpenMP"). Such a
child runs fastopt's loops serially instead (``forked_from_omp``), those it builds too
(``parallel_ok``); tbb and workqueue survive a fork and stay parallel.
"""
from __future__ import annotations

import os
import threading
from time import perf_counter
from typing import Any

SPIN_COUNT = "1000"
forked_from_omp = False


def _omp_started() -> bool:
    try:
        import numba
        from numba.np.ufunc import parallel
    except Exception:
        return False
    return bool(parallel._is_initialized) and numba.threading_layer() == "omp"


def _after_fork_in_child() -> None:
    global forked_from_omp
    forked_from_omp = forked_from_omp or _omp_started()


_layer_problem: list = []      # [None] once the threading layer loaded, [message] if it cannot


def parallel_ok() -> bool:
    """Whether a loop built now may be the parallel one: numba's threading layer loads
    (checked once per process: ``NUMBA_THREADING_LAYER=tbb`` without tbb, or an unknown
    name, gives one warning naming the variable, and serial loops), and this is not a child
    forked after OpenMP started (GNU OpenMP would kill it in its first parallel region)."""
    if forked_from_omp:
        return False
    if not _layer_problem:
        try:
            import numba
            from numba.np.ufunc.parallel import _launch_threads
            _launch_threads()
            _layer_problem.append(None)
            _layer.append(numba.threading_layer())
        except Exception as exc:  # noqa: BLE001 - numba's ValueError, or an import failure
            import warnings

            layer = os.environ.get("NUMBA_THREADING_LAYER", "default")
            message = (f"numba's threading layer cannot start (NUMBA_THREADING_LAYER={layer!r}: "
                       f"{str(exc).splitlines()[0]}); fastopt runs its loops on one thread. "
                       "Install the layer (pip install tbb for 'tbb') or unset "
                       "NUMBA_THREADING_LAYER")
            _layer_problem.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
    return _layer_problem[0] is None


def configure() -> None:
    """The spin count (unless the user chose one) and the fork hook; once per process."""
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    os.register_at_fork(after_in_child=_after_fork_in_child)


BACK_TO_BACK = 20e-6   # seconds: a loop starting this soon after the last one ended is a tight loop
EXPLORE = 32           # back-to-back calls between two runs of the loop that is not chosen
_last_end = [-1.0]     # when the last mid-size loop ended (perf_counter)


class WarmChooser:
    """The serial or the parallel loop of a mid-size bucket, chosen at each call.

    After the user's own code (a forward and backward pass) the threads sleep, and waking
    them costs more than they save at these sizes: the serial loop runs. When loops come
    back to back (within BACK_TO_BACK), the threads, still spinning, start at once: the
    loop that has been faster here runs (a moving average of each one's time; the other
    is timed again every EXPLORE calls), so two processes sharing the cores fall back to
    the serial loop where their threads would wait on each other. Both loops compute
    every element alike: the choice changes timings only, never results.
    """

    def __init__(self, serial: Any, parallel: Any, clock: Any = perf_counter) -> None:
        self.serial, self.parallel, self.clock = serial, parallel, clock
        self.targetoptions = parallel.targetoptions
        self.seconds: dict[bool, float | None] = {False: None, True: None}
        self.calls = 0

    def __call__(self, table, grads, state, scalars, parts, *rest):
        start = self.clock()
        back_to_back = start - _last_end[0] < BACK_TO_BACK and not forked_from_omp
        threads = back_to_back and self._parallel_pays()
        out = (self.parallel if threads else self.serial)(table, grads, state, scalars,
                                                         parts if threads else 1, *rest)
        _last_end[0] = end = self.clock()
        if back_to_back:
            old = self.seconds[threads]
            self.seconds[threads] = end - start if old is None else old + (end - start - old) / 4
        return out

    def _parallel_pays(self) -> bool:
        self.calls += 1
        serial, parallel = self.seconds[False], self.seconds[True]
        if parallel is None or serial is None:
            return parallel is None               # each timed once first
        faster = parallel <= serial
        return not faster if self.calls % EXPLORE == 0 else faster


_layer: list = []               # numba's threading layer, once started
_workqueue_turns = threading.Lock()


def one_at_a_time(parallel):
    """``parallel``, taking turns with every other parallel loop under numba's workqueue
    layer, which aborts the process when two threads run parallel loops at once
    ("Concurrent access"); as it is under the other layers."""
    if _layer[:1] != ["workqueue"]:
        return parallel

    def call(*args):
        with _workqueue_turns:
            return parallel(*args)

    call.targetoptions = parallel.targetoptions
    return call


def fork_guarded(serial, parallel):
    """``parallel(*args)``, or ``serial(*args)`` in a child forked after OpenMP started."""
    def call(*args):
        return (serial if forked_from_omp else parallel)(*args)

    call.serial, call.parallel = serial, parallel
    call.targetoptions = parallel.targetoptions
    return call


configure()
