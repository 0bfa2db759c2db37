"""One asyncio event loop in one thread, serving the userspace proxy sockets of every node in
this process (kube-proxy ran a goroutine per socket and connection; one loop keeps a cluster
of N nodes at one thread).

- acquire() -> EventLoopThread: the process-wide loop, started on first use;
  release(loop): the last user stops it and joins the thread.
- EventLoopThread.run(coro): run a coroutine on the loop from another thread, wait, return
  its result (or raise its exception). From the loop thread itself it is an error.
"""

from __future__ import annotations

import asyncio
import threading

CALL_TIMEOUT_S = 30.0


class EventLoopThread:
    def __init__(self, name: str = "minikp-userspace-proxy") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    def run(self, coro, timeout: float = CALL_TIMEOUT_S):
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("EventLoopThread.run called from its own thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()


_lock = threading.Lock()
_shared: EventLoopThread | None = None
_users = 0


def acquire() -> EventLoopThread:
    global _shared, _users
    with _lock:
        if _shared is None or not _shared.alive:
            _shared, _users = EventLoopThread(), 0
        _users += 1
        return _shared


def release(loop: EventLoopThread) -> None:
    global _shared, _users
    with _lock:
        if loop is not _shared:
            loop.stop()
            return
        _users -= 1
        if _users <= 0:
            _shared, _users = None, 0
            loop.stop()
