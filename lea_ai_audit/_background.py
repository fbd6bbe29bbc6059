"""Run a slow, self-contained computation in a worker process while the audit goes on.

The audit's checks run one after another on one core. On a machine with two or more cores a
check may hand its slowest part (evidently's drift report: seconds of pure-Python figure
building whatever the data size) to a worker process when the audit begins, and collect the
result when its turn comes. The worker runs the same function on the same (pickled) arguments,
so the result is the one the check would compute in place.

The worker is a fresh Python interpreter (``python -m lea_ai_audit._background``), started on
first use and kept for the life of the process, so a pipeline or notebook that audits many
times imports evidently there once. It is not a ``fork``: it inherits no threads, locks or
OpenMP pools from the auditing process (a forked child that touched a LightGBM model could
hang), does not copy the audited data, and never re-runs the caller's script (as
``multiprocessing``'s spawn would for a script without a ``__main__`` guard). Arguments and
results travel pickled over the worker's private pipes, between two processes of this package.

Anything that goes wrong (no worker can start, it dies, it raises, no answer within the
timeout) makes :meth:`Job.result` raise :class:`BackgroundUnavailable`, and the caller
computes the value in place: the worker makes the audit faster, never different, never fail.

Off on a single core, inside the worker itself, and with ``LEA_AUDIT_BACKGROUND=0``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

__all__ = ["BackgroundUnavailable", "Job", "available", "shutdown", "start"]

ENV = "LEA_AUDIT_BACKGROUND"
_HEADER = struct.Struct("!Q")


class BackgroundUnavailable(RuntimeError):
    """The background computation gave no value: compute it in place."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available() -> bool:
    """Whether :func:`start` would hand work to a worker process here."""
    if os.environ.get(ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return _cores() >= 2 and bool(sys.executable)


# -- framing: 8-byte length, then a pickle -------------------------------------------------------
def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream."""
    head = _read_exactly(stream, _HEADER.size)
    if head is None:
        return None
    data = _read_exactly(stream, _HEADER.unpack(head)[0])
    if data is None:
        return None
    return pickle.loads(data)


# -- the auditing side --------------------------------------------------------------------------
class _Worker:
    """One worker process, its pipes and the thread that reads its answers."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)  # this very lea_ai_audit
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
        env[ENV] = "0"  # the worker never starts workers of its own
        self.pid_of_parent = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lea_ai_audit._background"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True)
        self.pending: dict[int, queue.Queue[Any]] = {}  # job id -> where its answer goes
        self.send_lock = threading.Lock()
        self.closed = False
        self.reader = threading.Thread(target=self._read, name="lea-audit-worker-reader",
                                       daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                msg = _recv(self.proc.stdout)
                if msg is None:
                    break
                box = self.pending.pop(msg[0], None)
                if box is not None:  # (the answer of an abandoned job is dropped)
                    box.put(msg)
        except Exception:  # a broken pipe or stream: the worker is gone
            pass
        with self.send_lock:
            self.closed = True
            for box in self.pending.values():  # every waiter learns the worker ended
                box.put(None)
            self.pending.clear()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[int, queue.Queue[Any]]:
        job_id = next(self._ids)
        box: queue.Queue[Any] = queue.Queue(maxsize=1)
        data = (job_id, fn.__module__, fn.__qualname__, args, kwargs)
        with self.send_lock:
            if self.closed or not self.alive():
                raise BackgroundUnavailable("the worker process has ended")
            self.pending[job_id] = box
            try:
                assert self.proc.stdin is not None
                _send(self.proc.stdin, data)
            except BaseException:
                self.pending.pop(job_id, None)
                raise
        return job_id, box

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.closed = True
        self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5.0)
        self._close_pipes()

    def _close_pipes(self) -> None:
        self.reader.join(timeout=5.0)  # it ends at the end of the worker's output
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if pipe is not None:
                    pipe.close()

    def stop(self) -> None:
        if self.pending:  # answers nobody will collect: no need to wait for them
            self.kill()
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker exits at the end of its input
            self.proc.wait(timeout=2.0)
        except Exception:
            self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5.0)
        self._close_pipes()


_lock = threading.Lock()
_worker: _Worker | None = None


def _get_worker() -> _Worker:
    global _worker
    with _lock:
        w = _worker
        if w is not None and w.pid_of_parent == os.getpid() and w.alive() and not w.closed:
            return w
        if w is not None and w.pid_of_parent == os.getpid():
            w.stop()
        _worker = _Worker()  # (a forked copy of this process gets a worker of its own)
        return _worker


def shutdown() -> None:
    """Stop the worker process, if one runs (also done when the interpreter exits)."""
    global _worker
    with _lock:
        w, _worker = _worker, None
    if w is not None and w.pid_of_parent == os.getpid():
        try:
            w.stop()
        except KeyboardInterrupt:  # Ctrl-C while the process exits: stop the worker at once
            w.kill()


atexit.register(shutdown)


class Job:
    """``fn(*args, **kwargs)`` running in the worker; :meth:`result` collects it once.

    Jobs queue in the worker and run one after another, in the order they were started.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._worker = _get_worker()
        self.id, self._box = self._worker.submit(fn, args, kwargs)
        self._done = False
        self.seconds: float | None = None  # the worker's computing time, once collected

    def result(self, timeout: float = 600.0) -> Any:
        """The worker's value; :class:`BackgroundUnavailable` when it has none to give."""
        if self._done:
            raise BackgroundUnavailable("the result was already collected")
        try:
            msg = self._box.get(timeout=timeout)
        except queue.Empty:
            self._worker.kill()  # stuck: the next job gets a new worker
            raise BackgroundUnavailable(f"no answer within {timeout:g} s") from None
        finally:
            self.close()
        if msg is None:  # its pipe closed: the process is ending, its exit code may lag
            try:
                code = self._worker.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                code = None
            raise BackgroundUnavailable(f"the worker process ended (exit code {code})")
        _, ok, value, seconds = msg
        self.seconds = float(seconds)
        if not ok:
            raise BackgroundUnavailable(str(value))
        return value

    def close(self) -> None:
        """Give up on the answer if not collected (safe to call twice)."""
        if not self._done:
            self._done = True
            self._worker.pending.pop(self.id, None)


def start(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job | None:
    """A :class:`Job` running ``fn(*args, **kwargs)`` in the worker, or None (compute it in
    place). ``fn`` must be a module-level function of an importable module."""
    if not available():
        return None
    try:
        return Job(fn, *args, **kwargs)
    except Exception as exc:
        log.debug("background work unavailable: %s", exc)
        return None


# -- the worker side ----------------------------------------------------------------------------
def _serve() -> None:
    """Answer jobs from standard input, in order, until it ends."""
    import warnings

    warnings.simplefilter("ignore")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the answers
    inbox: queue.Queue[Any] = queue.Queue()

    def read() -> None:  # drain the pipe at once, so that the auditing side never blocks
        try:
            while (msg := _recv(sys.stdin.buffer)) is not None:
                inbox.put(msg)
        finally:
            inbox.put(None)

    threading.Thread(target=read, daemon=True).start()
    while (msg := inbox.get()) is not None:
        job_id, module, name, args, kwargs = msg
        t0 = time.perf_counter()
        try:
            fn: Any = importlib.import_module(module)
            for part in name.split("."):
                fn = getattr(fn, part)
            answer: tuple[Any, ...] = (job_id, True, fn(*args, **kwargs))
        except BaseException as exc:  # reported; the caller computes the value itself
            answer = (job_id, False, f"{type(exc).__name__}: {exc}")
        answer += (time.perf_counter() - t0,)
        try:
            _send(out, answer)
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # an unpicklable value
            _send(out, (job_id, False, f"the result could not be sent: {exc}", 0.0))


if __name__ == "__main__":
    _serve()
