"""Launching the distributed tests' programs: ``mpiexec -n 2 python worker.py CASE OUT``.

The MPI tests skip, with the reason, where mpi4py or a working ``mpiexec`` is missing
(``pip install -e ".[mpi]"`` provides both; CI installs that extra, so there they run).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys

import pytest

from zerograd.distributed import find_mpiexec

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")
# Generous for a loaded 2-core machine; a healthy launch takes one to three seconds.
TIMEOUT = 90


def child_env(**extra: str) -> dict:
    """The environment of a launched program: one BLAS thread per process (two ranks on
    two cores), and no MPI variables inherited from an outer launcher."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPI_LOCAL"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


@functools.lru_cache(maxsize=1)
def mpi_unavailable() -> str | None:
    """Why MPI programs cannot run here, or None when a 2-process smoke run works."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    mpiexec = find_mpiexec()
    if mpiexec is None:
        return "no mpiexec found (pip install -e '.[mpi]' installs MPICH's)"
    # Rank 0 alone prints (the launcher may interleave the ranks' output): the world size
    # and the sum of the ranks, which needs a working collective.
    code = ("from mpi4py import MPI; c = MPI.COMM_WORLD; s = c.allreduce(c.Get_rank()); "
            "c.Get_rank() or print(c.Get_size(), s)")
    try:
        result = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", code],
                                capture_output=True, text=True, timeout=TIMEOUT,
                                stdin=subprocess.DEVNULL, env=child_env())
    except subprocess.TimeoutExpired:
        return f"{mpiexec} -n 2 did not finish a smoke run within {TIMEOUT} s"
    if result.returncode != 0 or result.stdout.split() != ["2", "1"]:
        return (f"{mpiexec} -n 2 failed a smoke run (status {result.returncode}): "
                f"{(result.stdout + result.stderr).strip()[-300:]}")
    return None


@pytest.fixture
def mpirun():
    """``mpirun(case, out, *args, n=2)``: run the worker under mpiexec; returns the
    CompletedProcess. Skips where MPI cannot run."""
    reason = mpi_unavailable()
    if reason:
        pytest.skip(reason)

    def run(case: str, out, *args: str, n: int = 2, check: bool = True):
        command = [find_mpiexec(), "-n", str(n), sys.executable, WORKER, case, str(out),
                   *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                                stdin=subprocess.DEVNULL, env=child_env())
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed with status "
                                 f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def run_alone(case: str, out, *args: str, block_mpi4py: bool = False, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """The worker as a plain ``python`` process, without mpiexec; ``block_mpi4py`` runs it
    as on a machine where mpi4py is not installed."""
    argv = [WORKER, case, str(out), *args]
    if block_mpi4py:
        code = ("import runpy, sys; sys.modules['mpi4py'] = None; "
                f"sys.argv = {argv!r}; runpy.run_path({WORKER!r}, run_name='__main__')")
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, *argv]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                            stdin=subprocess.DEVNULL, env=child_env(**(env or {})))
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed with status {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result
