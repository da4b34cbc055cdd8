"""numba's threads where processes share cores and fork.

numba runs the parallel loops on its threading layer: tbb where numba can load it, else
GNU OpenMP (omp), else its own workqueue. Measured on the 2-core machine, Adam on 1e5
float32 elements per step, each process alone / two processes at once:

* omp as it comes: 29 us / 7,995 us. libgomp's threads spin ~300,000 times at each
  barrier waiting for a core the other process holds;
* omp with ``GOMP_SPINCOUNT=1000``: 29 us / 107 us; with 0 (``OMP_WAIT_POLICY=PASSIVE``):
  86 us / 59 us: a thread that sleeps at once wakes too late for the next step;
* tbb: 37 us / 100 us (needs the tbb package where numba finds its library);
* workqueue: 146 us / 102 us.

So, unless the user chose (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set), fastopt sets
``GOMP_SPINCOUNT=1000`` before OpenMP starts; it has no effect when another library
started libgomp in the process first.

GNU OpenMP is not fork-safe: a child forked after its threads started is killed when it
runs a parallel region ("fork() called from a process already using GNU OpenMP"). Such a
child runs fastopt's loops serially instead (``forked_from_omp``); tbb and workqueue
survive a fork and stay parallel.
"""
from __future__ import annotations

import os

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
            from numba.np.ufunc.parallel import _launch_threads
            _launch_threads()
            _layer_problem.append(None)
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


def fork_guarded(serial, parallel):
    """``parallel(*args)``, or ``serial(*args)`` in a child forked after OpenMP started."""
    def call(*args):
        return (serial if forked_from_omp else parallel)(*args)

    call.serial, call.parallel = serial, parallel
    call.targetoptions = parallel.targetoptions
    return call


configure()
