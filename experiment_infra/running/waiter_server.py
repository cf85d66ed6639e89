"""One process per runner that forks the cases' waiters, instead of one interpreter start per case.

    python -S experiment_infra/running/waiter_server.py FD      (started by ``forked_waiter``, never by hand)

A case's waiter (``case_waiter``) used to be a fresh ``python`` per case: its start-up and
imports cost more CPU than a trivial case's runner work and Prefect's task run together.
Here one server, started with the first case of a process, holds the waiter's code
already imported and forks a waiter per case on request: each forked waiter is the same
process as before (its own session, the entry point's parent, writing the run record's
end itself), so a runner that dies still leaves cases that finish and read
``completed``. The server ends when its runner does (its socket closes); the waiters it
forked run on.

The runner side (``forked_waiter``) hands the server the case's waiter command line, its
working directory, its environment and the write ends of two pipes (the waiter's
stdout and stderr, the runner's live log) over a Unix socket; the server answers with
the waiter's pid, later with its exit status, and reaps it only when the runner has
read that status (so the pid is never reused while the runner may still signal it).
The returned object behaves like the ``subprocess.Popen`` of the old waiter for
``streaming.run_streaming``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as a script, sys.path[0] is experiment_infra/: the directory holding the package instead.
    import os
    import sys

    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback

from experiment_infra.running.case_waiter import BAD_INPUT_EXIT_CODE, _parse, wait_case

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SERVER_SCRIPT = os.path.realpath(__file__)
MAX_MESSAGE = 1 << 20  # a request carries the case's environment: generous

__all__ = ["SERVER_SCRIPT", "ForkedWaiter", "forked_waiter", "is_forked_waiter"]


def is_forked_waiter(argv: list[str]) -> bool:
    """``argv`` (of a running process) is this server's, or a waiter it forked (same argv)."""
    args = list(argv[1:])
    if args[:1] == ["-S"]:
        args = args[1:]
    return bool(args) and os.path.basename(args[0]) == os.path.basename(SERVER_SCRIPT)


# ------------------------------------------------------------------ the server process


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _waiter_child(sock: socket.socket, wake: tuple[int, int], argv: list[str], cwd: str, env: dict[str, str], fds: list[int]) -> None:
    """In the forked child: become the case's waiter, as a fresh ``case_waiter.py`` would be."""
    code = 1
    try:
        sock.close()
        for f in wake:
            os.close(f)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()  # its own session, as before: a terminal's Ctrl-C never reaches it
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.close(fds[0])
        os.close(fds[1])
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        parsed = _parse(argv)
        if isinstance(parsed, str):
            os.write(2, f"error: case_waiter.py: {parsed}\n".encode())
            code = BAD_INPUT_EXIT_CODE
        else:
            code = wait_case(*parsed)
    except BaseException:
        try:
            os.write(2, traceback.format_exc().encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _exit_status(pid: int) -> int | None:
    """The exit status of child ``pid`` if it ended (Popen's convention), without reaping it."""
    try:
        found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -signal.SIGKILL
    if found is None or found.si_pid == 0:
        return None
    return found.si_status if found.si_code == os.CLD_EXITED else -found.si_status


def serve(fd: int) -> int:
    """Fork a waiter per request on socket ``fd`` until the runner closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner forwards what the waiters must hear
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    running: set[int] = set()  # forked, exit not yet told
    while True:
        for key, _ in selector.select(1.0):
            if key.fd == wake_r:
                os.read(wake_r, 4096)
                continue
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
            if not data:
                return 0  # the runner is gone; the waiters run on
            request = json.loads(data)
            if request["op"] == "reap":
                try:
                    os.waitpid(request["pid"], 0)
                except ChildProcessError:
                    pass
                continue
            try:
                pid = os.fork()
            except OSError as exc:
                for f in fds:
                    os.close(f)
                _send(sock, {"id": request["id"], "error": str(exc)})
                continue
            if pid == 0:
                _waiter_child(sock, (wake_r, wake_w), request["argv"], request["cwd"], request["env"], fds)
            for f in fds:
                os.close(f)
            running.add(pid)
            _send(sock, {"id": request["id"], "pid": pid})
        for pid in list(running):
            status = _exit_status(pid)
            if status is not None:
                running.discard(pid)
                _send(sock, {"exit": pid, "code": status})


# ------------------------------------------------------------------ the runner side


class ForkedWaiter:
    """A forked waiter, as ``run_streaming`` uses a ``subprocess.Popen``."""

    def __init__(self, args: list[str], pid: int, stdout: Any, stderr: Any) -> None:
        self.args, self.pid, self.stdout, self.stderr = args, pid, stdout, stderr
        self.returncode: int | None = None
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _end(self, code: int) -> None:
        self.returncode = code
        self._ended.set()


class _Client:
    """This process's server: started on first use, again after a fork or if it died."""

    def __init__(self, python: str) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.next_id = 0
        # request id -> (answered, answer, the waiter's pipes' read ends): the reader thread makes
        # the waiter as the pid comes, so an exit that follows at once finds it
        self.pending: dict[int, tuple[threading.Event, list[Any], tuple[int, int], list[str]]] = {}
        self.waiters: dict[int, ForkedWaiter] = {}
        self.proc = subprocess.Popen(
            [python, "-S", SERVER_SCRIPT, str(theirs.fileno())], pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )
        theirs.close()
        self.alive = True
        threading.Thread(target=self._read, name="waiter-server", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self.lock:
                if "exit" in message:
                    waiter = self.waiters.pop(message["exit"], None)
                else:
                    event, slot, (out_r, err_r), argv = self.pending.pop(message["id"])
                    if "pid" in message:
                        made = ForkedWaiter(argv, message["pid"], os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))
                        self.waiters[made.pid] = made
                        slot.append(made)
                    else:
                        os.close(out_r)
                        os.close(err_r)
                        slot.append(OSError(message.get("error", "the waiter server could not fork")))
                    event.set()
                    continue
            if waiter is not None:
                waiter._end(message["code"])
                try:
                    _send(self.sock, {"op": "reap", "pid": waiter.pid})
                except OSError:
                    pass
        # The server died (or this process is exiting): nobody can tell these waiters' ends.
        with self.lock:
            self.alive = False
            lost, self.waiters = list(self.waiters.values()), {}
            pending, self.pending = list(self.pending.values()), {}
        for event, slot, fds, _ in pending:
            for f in fds:
                os.close(f)
            slot.append(OSError("the waiter server ended"))
            event.set()
        for waiter in lost:
            waiter._end(-signal.SIGKILL)
        self.proc.wait()

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str]) -> ForkedWaiter:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        event, slot = threading.Event(), []
        ident = None
        try:
            with self.lock:
                if not self.alive:
                    raise OSError("the waiter server ended")
                self.next_id += 1
                ident = self.next_id
                self.pending[ident] = (event, slot, (out_r, err_r), argv)
                request = {"op": "spawn", "id": ident, "argv": argv[3:], "cwd": cwd, "env": env}
                socket.send_fds(self.sock, [json.dumps(request).encode()], [out_w, err_w])
        except BaseException:
            with self.lock:
                self.pending.pop(ident, None)
            for f in (out_r, err_r):
                os.close(f)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        event.wait()
        if isinstance(slot[0], OSError):
            raise slot[0]
        return slot[0]


_client: _Client | None = None
_client_lock = threading.Lock()


def _waiter_client(python: str) -> _Client:
    global _client
    with _client_lock:
        if _client is None or _client.owner != os.getpid() or not _client.alive:
            _client = _Client(python)
        return _client


def forked_waiter(command: list[str], cwd: Any, env: dict[str, str]) -> ForkedWaiter:
    """Start the waiter ``command`` (``case_waiter.waiter_argv``) as a fork of this process's
    server; ``run_streaming``'s ``spawn``. Raises OSError if it cannot."""
    try:
        client = _waiter_client(command[0])
        return client.spawn(command, str(cwd), env)
    except OSError:
        raise
    except Exception as exc:  # a server that broke its protocol: the case fails to start, as a failed exec would
        raise OSError(f"the waiter server failed: {exc}") from exc


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("error: waiter_server.py: expected the socket's file descriptor (started by the runner only)", file=sys.stderr)
        sys.exit(BAD_INPUT_EXIT_CODE)
    sys.exit(serve(int(sys.argv[1])))
