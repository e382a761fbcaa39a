"""A Dask cluster for the commands that take ``--dask`` (``count``, ``score``, ``perplexity``).

``connect`` opens a client to a running scheduler (``tcp://HOST:PORT``) or starts ``local:N``
worker processes, in bounded time and with one-line errors; ``expand_paths`` turns the command's
inputs into files the workers can read (patterns expanded, stdin and pipes refused);
``shard_bytes_setting`` reads ``LMTOOL_DASK_SHARD_BYTES``. What each command sends to the workers
is in ``ngram.distributed`` (counting) and ``cluster_scoring`` (scoring).
"""

import atexit
import glob
import logging
import os
import re
import sys
import threading
from contextlib import contextmanager

from .errors import LmtoolError
from .scratch import is_pipe

MISSING = "--dask needs dask.distributed: pip install 'lmtool[dask]'"
SHARD_BYTES_VARIABLE = "LMTOOL_DASK_SHARD_BYTES"
MIN_SHARD_BYTES = 1 << 20
SMALLEST_SHARD_BYTES = 256
"""The least ``LMTOOL_DASK_SHARD_BYTES`` may ask for (tests cut small files into a few shards)."""
CONNECT_SECONDS = 20


def load_distributed():
    try:
        import distributed
    except ImportError:
        raise LmtoolError(MISSING) from None
    return distributed


def expand_paths(paths):
    """Glob patterns expanded (sorted) on this machine; other paths as given. Stdin and pipes are refused."""
    files = []
    for path in paths:
        if str(path) == "-":
            raise LmtoolError("--dask: workers read files, not stdin; save the text to a file they can see")
        if is_pipe(path):
            raise LmtoolError("--dask: workers read files, not a pipe; save the text to a file they can see", path)
        if glob.has_magic(str(path)) and not os.path.exists(path):  # a file named "x[1].txt" is itself
            matches = sorted(glob.glob(str(path)))
            if not matches:
                raise LmtoolError("--dask: no file matches this pattern", path)
            files.extend(matches)
        else:
            files.append(str(path))
    return files


class connect:
    """Context manager: a ``distributed.Client`` for ``tcp://HOST:PORT`` or a new ``local:N`` cluster,
    closed (the local cluster shut down) at the end."""

    def __init__(self, address):
        self.address = address
        self.cluster = self.client = None

    def __enter__(self):
        distributed = load_distributed()
        local = re.fullmatch(r"local:(\d+)", self.address)
        try:
            if local:
                workers = int(local.group(1))
                if not 1 <= workers <= 1024:
                    raise LmtoolError(f"--dask local:N needs 1 <= N <= 1024, got {self.address}")
                # no dashboard, and the scheduler's HTTP server on a free port: the default 8787 may be
                # taken (by another local cluster), which distributed warns about on stderr
                with _workers_writing_to_nothing():
                    self.cluster = distributed.LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        silence_logs=logging.CRITICAL,
                        scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"})
                self.client = distributed.Client(self.cluster)
            elif re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", self.address):
                self.client = _connect(distributed, self.address, CONNECT_SECONDS)
            else:
                raise LmtoolError(f"--dask: expected tcp://HOST:PORT or local:N, got {self.address!r}")
        except OSError as err:
            self.__exit__(None, None, None)
            raise LmtoolError(f"--dask: cannot reach the scheduler at {self.address} ({err})") from None
        return self.client

    def __exit__(self, kind, value, tb):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


@contextmanager
def _workers_writing_to_nothing():
    """Standard error pointed at /dev/null while the local cluster's worker processes start, so that
    they inherit it. A terminal's Ctrl-C reaches every process of the job, and each worker would
    print its own tracebacks under the command's one line; what a worker has to say about the work
    comes back through Dask. This process writes nothing meanwhile, and has its stderr back after.
    A Ctrl-C while the cluster starts leaves it half made: distributed's own clean-up at exit would
    then fail with a traceback, so that is dropped (the worker processes end with this one), and so
    would asyncio's log of each of its start-up tasks that failed with no one to await them, so that
    logger is turned off."""
    sys.stderr.flush()
    saved, nothing = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(nothing, 2)
    try:
        yield
    except KeyboardInterrupt:
        from distributed.deploy import spec

        atexit.unregister(spec.close_clusters)
        logging.getLogger("asyncio").disabled = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(nothing)


def _connect(distributed, address, seconds):
    """``distributed.Client(address)``, given up after ``seconds`` (plus a margin) even when what
    answers there is not a Dask scheduler: the client's own timeout covers reaching the address, not
    a handshake that never ends (a web server waits for a request), and such a peer's bytes read
    as Dask's can ask for any amount of memory."""
    box = {}

    def attempt():
        try:
            box["client"] = distributed.Client(address, timeout=f"{seconds}s")
        except BaseException as err:  # raised again on the calling thread
            box["error"] = err

    thread = threading.Thread(target=attempt, name="lmtool-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds + 5)
    if isinstance(box.get("error"), MemoryError) or "error" not in box and "client" not in box:
        raise LmtoolError(f"--dask: what answers at {address} is not a Dask scheduler (it did not greet "
                          f"as one within {seconds} s); give the scheduler's address")
    if "error" in box:
        raise box["error"]
    return box["client"]


def shard_bytes_setting():
    """The shard size ``LMTOOL_DASK_SHARD_BYTES`` asks for, or None when it is unset."""
    text = os.environ.get(SHARD_BYTES_VARIABLE, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) == 0:
        raise LmtoolError(f"{SHARD_BYTES_VARIABLE} must be a positive number of bytes, got {text!r}")
    if int(text) < SMALLEST_SHARD_BYTES:  # a task per few bytes: hours of scheduling for nothing
        raise LmtoolError(f"{SHARD_BYTES_VARIABLE} must be at least {SMALLEST_SHARD_BYTES} bytes, got {text}")
    return int(text)
