"""The process group: which process this is, how many there are, and the collectives.

zerograd does not implement communication itself; it uses MPI through ``mpi4py``, the engine
of ChainerMN and Horovod and the one every HPC cluster has. ``mpi4py`` is imported on the
first call of :func:`init` (directly or through ``rank()``, ``world_size()``, ...), never by
``import zerograd``.

Without MPI the same script runs as one process: when ``mpi4py`` is not installed and no MPI
launcher started this process, :func:`init` returns a world of size 1 whose collectives
return their input. When a launcher did start it (``mpiexec -n 4`` sets ``PMI_SIZE``, Open
MPI ``OMPI_COMM_WORLD_SIZE``, ``srun`` ``SLURM_STEP_NUM_TASKS``) but ``mpi4py`` is missing,
:func:`init` refuses: four processes silently training four separate models is the worst
outcome.

Failure: with more than one process, :func:`init` installs a ``sys.excepthook`` that prints
the uncaught exception's traceback, names the rank, and calls ``MPI.COMM_WORLD.Abort``, so
the launcher ends every process with a non-zero status instead of leaving the others
waiting forever in their next collective.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback

import numpy as np

from zerograd.backend import as_numpy
from zerograd.errors import ZerogradError

__all__ = [
    "DistributedError", "MPI_INSTALL_HINT", "abort", "allgather_object", "allreduce_mean",
    "allreduce_sum", "barrier", "broadcast_object", "communicator", "find_mpiexec", "init",
    "is_main", "rank", "world_size",
]

MPI_INSTALL_HINT = (
    "install MPI for Python with zerograd's extra: pip install 'zerograd[mpi]' (mpi4py plus "
    "the MPICH runtime from PyPI, which provides mpiexec), or pip install mpi4py against the "
    "cluster's own MPI"
)

# Seconds a failing rank waits between writing its traceback and aborting the job, so that
# the launcher forwards the whole traceback before it ends the processes.
ABORT_GRACE_SECONDS = 1.0

# Environment variables by which MPI launchers tell a process how many processes they
# started: MPICH/Intel MPI (hydra, PMI), Open MPI, PMIx, and a Slurm job step (srun).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE",
                            "SLURM_STEP_NUM_TASKS")


class DistributedError(ZerogradError, RuntimeError):
    """The processes of a distributed run disagree (model structure, weights, layout), or
    the distributed engine cannot start."""


class _MPIComm:
    """The collectives zerograd needs, on an ``mpi4py`` communicator.

    Upper-case methods move NumPy buffers (no pickling); lower-case ones move Python
    objects (pickled), for small or irregular data such as settings and signatures.
    """

    def __init__(self, comm, MPI) -> None:
        self.comm = comm
        self._MPI = MPI
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.backend = "mpi"

    def Allreduce_sum(self, buffer: np.ndarray) -> None:
        """Sum ``buffer`` (contiguous) over all processes, in place."""
        self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)

    def Bcast(self, buffer: np.ndarray, root: int) -> None:
        self.comm.Bcast(buffer, root=root)

    def bcast(self, obj, root: int):
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj) -> list:
        return self.comm.allgather(obj)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        # Abort on COMM_WORLD, whatever communicator training uses: the whole job must end.
        self._MPI.COMM_WORLD.Abort(code)
        # MPICH under its hydra launcher returns from MPI_Abort once it has told the
        # launcher (which then ends the job); this process must not carry on meanwhile.
        os._exit(code)


class _LocalComm:
    """A world of one process: every collective returns its input."""

    rank = 0
    size = 1
    backend = "local"

    def Allreduce_sum(self, buffer: np.ndarray) -> None:
        pass

    def Bcast(self, buffer: np.ndarray, root: int) -> None:
        _check_root(root, 1)

    def bcast(self, obj, root: int):
        _check_root(root, 1)
        return obj

    def allgather(self, obj) -> list:
        return [obj]

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        os._exit(code)


_comm: _MPIComm | _LocalComm | None = None
_previous_excepthook = None


def _launcher_world_size() -> int:
    """The number of processes an MPI launcher says it started (1 when none did)."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def _import_mpi():
    """``mpi4py.MPI``, or ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:  # mpi4py missing, or its MPI library cannot be loaded
        raise ImportError(f"zerograd.distributed needs mpi4py ({error}); "
                          f"{MPI_INSTALL_HINT}") from error
    return MPI


def init(comm=None, abort_on_exception: bool = True):
    """Joins the process group (once; later calls return the same group).

    ``comm``: an ``mpi4py`` communicator to train on (default ``MPI.COMM_WORLD``). Without
    ``mpi4py`` and outside an MPI launcher, the group is this one process (world size 1).
    ``abort_on_exception``: with more than one process, an uncaught exception on any rank
    prints its traceback and aborts the whole job (see the module doc).

    Returns the communicator object (``.rank``, ``.size``, ``.backend``: "mpi" or "local";
    with MPI, ``.comm`` is the ``mpi4py`` communicator).
    """
    global _comm
    if _comm is not None and comm is None:
        return _comm
    if comm is not None:
        _comm = _MPIComm(comm, _import_mpi())
    else:
        try:
            MPI = _import_mpi()
        except ImportError as error:
            launched = _launcher_world_size()
            if launched > 1:
                raise ImportError(
                    f"zerograd.distributed: an MPI launcher started {launched} processes, but "
                    f"mpi4py cannot be imported, so they cannot work together; "
                    f"{MPI_INSTALL_HINT}") from error
            _comm = _LocalComm()
        else:
            _comm = _MPIComm(MPI.COMM_WORLD, MPI)
    if abort_on_exception and _comm.size > 1:
        _install_abort_hook()
    return _comm


def communicator():
    """The process group, joined on first use (:func:`init` with its defaults)."""
    return _comm if _comm is not None else init()


def _install_abort_hook() -> None:
    global _previous_excepthook
    if _previous_excepthook is not None:
        return
    _previous_excepthook = sys.excepthook

    def abort_on_exception(kind, value, tb) -> None:
        group = communicator()
        try:
            report = (f"zerograd.distributed: uncaught exception on rank {group.rank} of "
                      f"{group.size}; aborting all {group.size} processes (MPI Abort)\n"
                      + "".join(traceback.format_exception(kind, value, tb)))
            sys.stdout.flush()
            sys.stderr.flush()
            # One write of the whole report, then a moment for the launcher to pass it on:
            # the Abort tears the job down, and a traceback written line by line was seen
            # cut short in mpiexec's output (measured: some runs lost its last lines).
            os.write(sys.stderr.fileno(), report.encode("utf-8", "replace"))
            time.sleep(ABORT_GRACE_SECONDS)
        finally:
            group.abort(1)

    sys.excepthook = abort_on_exception


def rank() -> int:
    """This process's index in the group, 0 .. world_size() - 1."""
    return communicator().rank


def world_size() -> int:
    """The number of processes in the group (1 without MPI)."""
    return communicator().size


def is_main() -> bool:
    """True on rank 0: the process that prints, logs and writes checkpoints."""
    return communicator().rank == 0


def barrier() -> None:
    """Waits until every process has reached this call."""
    communicator().barrier()


def abort(code: int = 1) -> None:
    """Ends every process of the job with status ``code`` (``MPI.COMM_WORLD.Abort``).

    For an error that one rank handles without raising (a command line that prints its
    message and exits): the other ranks would otherwise wait in their next collective.
    Without MPI it exits this process. Never returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    group = communicator()
    if group.size > 1:
        # As for an uncaught exception: the message just written must reach the launcher
        # before the Abort ends the job (CI saw an error line lost without this wait).
        time.sleep(ABORT_GRACE_SECONDS)
    group.abort(int(code))


def _check_root(root: int, size: int) -> int:
    if not (isinstance(root, (int, np.integer)) and 0 <= root < size):
        raise ValueError(f"zerograd.distributed: root must be a rank in 0..{size - 1}, "
                         f"got {root!r}")
    return int(root)


def broadcast_object(obj, root: int = 0):
    """Rank ``root``'s ``obj`` on every rank (pickled: settings, checkpoints, small states).
    The others' ``obj`` is ignored (pass None)."""
    group = communicator()
    return group.bcast(obj, _check_root(root, group.size))


def allgather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled)."""
    return communicator().allgather(obj)


def _as_reduce_array(value, owner: str) -> tuple[np.ndarray, bool]:
    """(a float NumPy copy of ``value``, whether ``value`` was a scalar)."""
    array = np.array(as_numpy(value), copy=True)  # a Variable's or a CuPy array's data too
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: expected a number, an array or a Variable of numbers, got "
                        f"{type(value).__name__} of dtype {array.dtype}")
    # Integer metrics (counts of correct answers) are summed in float64, exact up to 2**53;
    # float arrays keep their dtype.
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array, array.ndim == 0  # a fresh C-contiguous array, which MPI can use in place


def allreduce_sum(value):
    """The sum of ``value`` over all ranks (a collective: every rank must call it).

    ``value``: a number, an array or a Variable. Returns a float for a scalar, else an array
    (float64 for integer inputs, so counts add up exactly).
    """
    array, scalar = _as_reduce_array(value, "allreduce_sum")
    communicator().Allreduce_sum(array)
    return float(array) if scalar else array


def allreduce_mean(value):
    """The mean of ``value`` over all ranks (a collective: every rank must call it).

    For metrics: ``allreduce_mean(float(loss.data))`` is the global loss when every rank
    averaged over the same number of examples (a ``DatasetShard`` makes the shards equal);
    for unequal counts average sums instead: ``allreduce_sum(total) / allreduce_sum(count)``.
    Returns a float for a scalar, else an array.
    """
    group = communicator()
    array, scalar = _as_reduce_array(value, "allreduce_mean")
    group.Allreduce_sum(array)
    array /= group.size
    return float(array) if scalar else array


def find_mpiexec() -> str | None:
    """The ``mpiexec`` that belongs to this Python's MPI (the one the ``[mpi]`` extra
    installs next to the interpreter), else the first on PATH, else None."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(here, os.X_OK):
        return here
    return shutil.which("mpiexec")


def _reset_for_tests() -> None:
    """Forget the group and restore the excepthook (tests that switch backends)."""
    global _comm, _previous_excepthook
    if _previous_excepthook is not None:
        sys.excepthook = _previous_excepthook
    _comm = None
    _previous_excepthook = None
