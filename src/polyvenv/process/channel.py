"""A channel: one end of the socket between the host and a worker. Both ends run this same code.

Requests and replies carry a request id; requests also carry a *chain*, the
thread at the root of a call that may go back and forth (host -> worker ->
host callback -> worker ...): a request of a known chain goes to the thread
running that chain, so nested calls run where their caller waits; other
requests go to server threads, and only to one outside any call: a thread
waiting inside a call for its answer runs nothing of another chain (it could
not take its own answer while that ran, and the answer would be lost).

No thread is dedicated to reading. Whichever waiting thread finds the socket
free reads the next frame and hands it to its thread (leader/follower): a
caller usually reads its own reply and a worker thread runs the request it
read, so a call costs one message each way and no thread switch. The usual
case goes shorter still: a root call made while nobody reads takes the turn,
sends and reads its reply itself (``_call_alone``), and the worker's main
thread runs the new calls it reads straight away (``_serve_main``); whatever
else they read goes back for the general routing.

While a worker thread runs a request nobody reads the socket. The host rings
a *bell* (a second socket pair) when it sends a request while another of its
threads already waits on the worker; the worker's bell watcher then gets a
thread reading again (an idle one, else a new one). The watcher also sees the
bell's end when the host is gone, and ends the worker even in the middle of a
long call. The host serves the worker's calls once the worker holds host
objects it may call at any time: then a host server thread keeps reading.

A call the host stops waiting for (Ctrl-C) is cancelled in the worker, or
the worker is stopped if it goes on: see "calls given up" below.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
from _pickle import loads as _loads  # the C function itself: never a wrapper the runtime puts on pickle.loads
from typing import Any, Callable

from . import codec, exceptions
from .buffers import Incoming, Outgoing
from .handles import Exports, Imports
from .proxy import Proxy
from .wire import CANCEL, ERROR, HELLO, KIND, NOTES, PURE, REPLY, REQUEST, Closed, Wire  # noqa: F401  (HELLO: worker)

_BUSY = object()  # _call_alone: another thread has the turn after all
_ANSWERS = frozenset((REPLY, ERROR))
GRACE = 2.0  # seconds a call given up in the host has to end in the worker before the worker is stopped
_STEP_BACK = object()  # _read: this thread handed its call to the main thread and leaves the socket


class _Waiter:
    """A thread's place in the channel: what was handed to it, and how to wake it."""

    __slots__ = ("inbox", "wake", "asleep", "chain", "calling", "finishing", "sending", "server", "encoder")

    def __init__(self, encoder: codec.Encoder) -> None:
        self.inbox: collections.deque = collections.deque()
        self.wake = threading.Lock()
        self.wake.acquire()  # released to wake the thread up
        self.asleep = False
        self.chain = 0  # the chain this thread runs in now (0: none)
        self.calling = 0  # the chain whose code (not the channel's) this thread runs now (0: none)
        self.finishing = False  # replying to a call it served at top level: back to work right after
        self.sending = False  # its last message may have gone out (request: whether to cancel it)
        self.server = False
        self.encoder = encoder  # its own: a pickler is reused, message after message


class Channel:
    """Calls to the peer's objects, and the peer's calls to ours, over one socket."""

    def __init__(self, sock: Any, descriptors: Any, side: int, ops: dict[str, Any], remote_error: type,
                 closed_error: Callable[[], BaseException], peer_name: str, serve: bool,
                 ring: Callable[[bytes], Any] | None = None) -> None:
        self.wire = Wire(sock, descriptors)
        self.side = side  # 0 host, 1 worker: their chain numbers never meet
        self.ops = ops
        self.remote_error = remote_error
        self.closed_error = closed_error
        self.peer_name = peer_name
        self.peer_numpy = False
        self.exports = Exports()
        self.imports = Imports(lambda handle: Proxy(self, handle))
        self.outgoing = Outgoing()
        self.incoming = Incoming()
        self.closed = False
        self.on_close: Callable[[], None] | None = None
        self.on_stuck: Callable[[], None] | None = None  # host: a call given up here did not end there in time
        self.grace = GRACE
        self._unsettled = 0  # host: calls given up whose end the peer has not told yet
        self._cancelled: set[int] = set()  # worker: chains the host gave up
        self._main: _Waiter | None = None  # worker: the main thread's, the one a cancel can interrupt anywhere
        self._main_ident = 0
        self._pushback: tuple | None = None  # a frame read but not routed (interrupted): the next reader's
        self._serving = serve
        self._ring = ring  # the host's bell: another thread waits on the worker, which may be busy
        self._bell = False  # the worker's: a reader is needed when the bell rings, not at every request
        self._wanted = 0  # readers the bell asked for while one was reading
        self._lock = threading.Lock()
        self._reading = False
        self._idle: list[_Waiter] = []  # asleep until their inbox fills or the socket is free
        self._replies: dict[int, _Waiter] = {}
        self._chains: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._local = threading.local()

    # -- calling the peer -------------------------------------------------------------

    def request(self, op: str, args: tuple, target: int = 0) -> Any:
        """Run ``op(*args)`` on the peer and return its result (or raise its exception here). ``target``:
        the handle of the peer's object the op is on, if the caller has it (else a proxy first in ``args``).

        Ctrl-C may land between any two calls in here (the host's main thread): what this thread
        records is set inside the ``try`` and undone first in the ``finally``, so none outlives it.
        """
        if self.closed:
            raise self.closed_error()
        try:
            me = self._local.waiter
        except AttributeError:
            me = self._waiter()
        if not target and args and type(args[0]) is Proxy and args[0]._pv_channel is self:
            target, args = args[0]._pv_handle, args[1:]  # by handle: the rest is often plain, so pure
        if not me.chain and not self._reading:  # a root call and nobody reads: most likely the usual call
            answer = self._call_alone(me, op, target, args)
            if answer is not _BUSY:
                return answer
        root, calling, rid = not me.chain, me.calling, 0
        try:
            me.calling, me.sending = 0, False  # channel code from here: no cancel lands in it
            rid = next(self._ids)
            if root:  # a chain of its own, named by its first request (the sides' numbers never meet)
                me.chain = rid * 2 + self.side
                self._chains[me.chain] = me
            self._replies[rid] = me
            self._send(REQUEST, rid, me.chain, (op, target, args), me)
            if root and self._ring is not None and (len(self._chains) > 1 or self._unsettled):
                try:
                    self._ring(b"!")
                except OSError:  # the worker is gone: the wait below says so
                    pass
            kind, payload = self._wait(me, rid)
        except BaseException:  # interrupted (Ctrl-C), or the peer is gone
            if rid:
                self._give_up(me, rid, me.chain, root and me.sending)
            raise
        finally:
            me.calling = calling
            if root:
                chain, me.chain = me.chain, 0
                if self._chains.get(chain) is me:
                    del self._chains[chain]
        if calling and calling in self._cancelled:  # the host gave this call up while it called back
            raise KeyboardInterrupt
        if kind == ERROR:
            error = exceptions.rebuild(payload, self.remote_error)
            raise error from error.__cause__
        return payload

    def _call_alone(self, me: _Waiter, op: str, target: int, args: tuple) -> Any:
        """The usual call, a root call while no other thread reads: this thread takes the turn, sends,
        reads its own reply and hands the turn back, with none of ``_wait``'s routing. Its chain and
        request id are registered only if something else comes first (a call back, another thread's
        reply, a large message): until then no other thread reads, so none needs them. That frame is
        put back for the general way, which this call then goes on with; ``_BUSY`` if the turn was
        taken after all."""
        lock = self._lock
        rid = chain = 0
        reading = registered = False
        try:
            lock.acquire()  # not ``with``, here and below: half the cost, the same release
            try:
                if self._reading or self._pushback is not None or self.closed or me.inbox:
                    return _BUSY
                self._reading = reading = True
            finally:
                lock.release()
            rid = next(self._ids)
            chain = rid * 2 + self.side
            if self._ring is not None and (self._chains or self._unsettled):  # another thread waits on the worker
                try:
                    self._ring(b"!")
                except OSError:  # the worker is gone: the read below says so
                    pass
            me.sending = False
            self._send(REQUEST, rid, chain, (op, target, args), me)
            frame = self._next_frame()
            if frame is None:  # the peer is gone (the channel is closed)
                raise self.closed_error()
            if frame[1] == rid and frame[0] & KIND in _ANSWERS and not frame[3]:  # its own reply, small
                lock.acquire()
                try:
                    self._reading = reading = False
                    spawn = False
                    if (self._idle or self._serving) and (self._wanted or not self._bell):  # as _read does
                        if self._wanted:
                            self._wanted -= 1
                        spawn = self._hand_on()
                finally:
                    lock.release()
                if spawn:
                    self._spawn(None)
                if frame[0] == REPLY | PURE:  # the usual answer: plain data, nothing let go of
                    return _loads(frame[4])
                kind, payload = self._receive(frame)
            else:  # the general way: whoever reads next routes it (to this thread, if it is its own)
                with lock:
                    me.chain, self._chains[chain], self._replies[rid] = chain, me, me
                    registered = True
                    self._pushback, self._reading, reading = frame, False, False
                    self._wake_one()
                kind, payload = self._wait(me, rid)
        except BaseException:  # interrupted (Ctrl-C), or the peer is gone
            if reading or (rid and not registered):
                with lock:
                    if rid and not registered:  # what _give_up needs to cancel it, and its reply to find
                        me.chain, self._chains[chain], self._replies[rid] = chain, me, me
                        registered = True
                    if reading:
                        self._reading = False
                        self._wake_one()
            if rid:
                self._give_up(me, rid, chain, me.sending)
            raise
        finally:
            if registered:
                me.chain = 0
                if self._chains.get(chain) is me:
                    del self._chains[chain]
        if kind == ERROR:
            error = exceptions.rebuild(payload, self.remote_error)
            raise error from error.__cause__
        return payload

    def _hand_on(self) -> bool:
        """Lock held, the turn given back: wake a thread to read; whether a new server must (none is idle)."""
        self._wake_one()
        return self._serving and not self._idle

    def _send(self, kind: int, rid: int, chain: int, body: Any, me: _Waiter | None = None) -> None:
        if self.imports.dead or self.incoming.released or self.outgoing.dropped:  # rare: no call, no lock
            notes = self._notes()  # what this side let go of rides along
            if notes:
                body, kind = (notes, body), kind | NOTES
        me = me or self._waiter()
        payload, large, pure = me.encoder.encode(body)
        if pure:
            kind |= PURE
        me.sending = True  # from here on the message may be out, in whole or in part
        if not large:
            try:
                self.wire.send(kind, rid, chain, payload)
            except Closed:
                self._close()
                raise self.closed_error() from None
            return
        places, fd = self.outgoing.place(large)
        try:
            self.wire.send(kind, rid, chain, payload, places, fd)
        except Closed:
            self._close()
            raise self.closed_error() from None
        finally:
            if fd is not None:
                os.close(fd)

    def export(self, obj: Any) -> int:
        """A handle for one of this side's objects; the peer may now call it at any time, so serve."""
        if not self._serving:
            self.serve_in_background()
        return self.exports.export(obj)

    def _notes(self) -> tuple | None:
        """What this side let go of since its last message: handles, and the peer's segments."""
        released = self.imports.take_released()
        freed = self.incoming.take_freed()
        dropped = self.outgoing.take_dropped()
        return (released, freed, dropped) if released or freed or dropped else None

    def _receive(self, frame: tuple) -> tuple[int, Any]:
        kind, payload = frame[0], frame[4]
        if not frame[3]:  # a small message: a pure one (the usual reply) is pickle's alone
            body = _loads(payload) if kind & PURE else codec.decode(self, payload, None)
        else:
            buffers = self.incoming.views(frame[3])
            body = codec.decode_pure(payload, buffers) if kind & PURE else codec.decode(self, payload, buffers)
        if kind & NOTES:
            (released, freed, dropped), body = body
            self.exports.release(released)
            self.outgoing.freed(freed)
            self.incoming.drop(dropped)
        return kind & KIND, body

    # -- waiting: for a reply, or for work -------------------------------------------

    def _waiter(self) -> _Waiter:
        try:
            return self._local.waiter
        except AttributeError:
            waiter = self._local.waiter = _Waiter(codec.Encoder(self))
            return waiter

    def _wait(self, me: _Waiter, rid: int) -> tuple[int, Any]:
        """Until the reply to ``rid`` comes (``rid`` 0: forever), run the requests handed to this thread."""
        while True:
            reply = self._step(me, rid)
            if reply is not None:
                return reply

    def _step(self, me: _Waiter, rid: int) -> tuple[int, Any] | None:
        """One turn of ``_wait``: read, or run what was handed over, or sleep; the reply if it came."""
        with self._lock:
            me.finishing = False
            if me.inbox:
                frame = me.inbox.popleft()
            elif self._reading or self.closed:
                frame = None
                if not self.closed:
                    me.asleep = True
                    self._idle.append(me)
            else:
                frame = self._reading = True  # this thread's turn to read
        if frame is True:
            frame = self._read(me)
        elif frame is None:
            if self.closed:
                raise self.closed_error()
            self._doze(me)
            return None
        if frame is _STEP_BACK:  # leave the socket to the main thread until woken
            with self._lock:
                frame = None if self.closed or me.inbox else _STEP_BACK
                if frame is not None:
                    me.asleep = True
                    self._idle.append(me)
            if frame is not None:
                self._doze(me)
            return None
        if frame is None:
            return None
        if frame[0] & KIND == REQUEST:
            self._serve(me, frame)
        elif frame[1] == rid:
            return self._receive(frame)
        return None

    def _read(self, me: _Waiter) -> tuple | None:
        """Read one frame (this thread has the turn) and route it; returns it if it is this thread's."""
        frame, self._pushback = self._pushback, None
        if frame is None:
            try:
                frame = self._next_frame()
            finally:
                if frame is None:  # interrupted, or the peer is gone: the turn goes back
                    with self._lock:
                        self._reading = False
                        self._wake_one()
            if frame is None:
                return None
        kind, routed = frame[0] & KIND, False
        if kind == REPLY or kind == ERROR:  # the usual frame: most often this thread's own reply
            try:
                with self._lock:
                    self._reading, routed, spawn = False, True, False
                    target = self._replies.pop(frame[1], None)
                    if target is me:
                        if self._wanted or not self._bell:  # off to work: another one reads
                            if self._wanted:
                                self._wanted -= 1
                            self._wake_one()
                            spawn = self._serving and not self._idle
                    elif target is not None:
                        target.inbox.append(frame)
                        self._wake(target)
            except BaseException:
                if not routed:  # interrupted (Ctrl-C) before the frame reached its thread: the next reader routes it
                    self._put_back(frame)
                raise
            if spawn:  # nobody idle will read while this thread is busy: a new server will
                self._spawn(None)
            elif target is None:  # the reply to a call given up (interrupted): its notes still count
                self._receive(frame)
            return frame if target is me else None
        rid, chain = frame[1], frame[2]
        promote = step_back = False
        try:
            if kind == CANCEL:
                with self._lock:
                    self._reading, routed = False, True
                    running = self._cancel(chain)
                self._receive(frame)  # its notes
                if not running:  # ended, or not started yet: say so now (a later reply is dropped)
                    self._reply(REPLY, rid, chain, None)
                return None
            with self._lock:
                self._reading, routed = False, True
                target = self._chains.get(chain)
                free = not me.chain  # not inside a call: a new call may run here
                if target is None and me is self._main and free and not self._wanted:
                    return frame  # the worker's main thread runs a new call itself: the usual request
                if target is None:
                    main = self._main
                    if (main is not None and me is not main
                            and (main.finishing or main.asleep and not main.chain)):
                        target, step_back = main, not self._wanted  # main runs it: a cancel can reach it there
                        main.finishing = False  # one call at a time: the next goes elsewhere if main is busy
                        if self._wanted:  # this thread goes on reading if one was wanted
                            self._wanted -= 1
                    else:
                        target = me if me.server and free else self._idle_server()
                if target is not None and target is not me:
                    target.inbox.append(frame)
                    self._wake(target)
                elif target is me and (self._wanted or not self._bell):  # off to work: another one reads
                    if self._wanted:
                        self._wanted -= 1
                    promote = True
                    self._wake_one()
                spawn = target is None or (target is me and promote and self._serving and not self._idle)
        except BaseException:
            if not routed:  # interrupted (Ctrl-C) before the frame reached its thread: the next reader routes it
                self._put_back(frame)
            raise
        if spawn:  # nobody idle will read while this thread is busy: a new server will
            self._spawn(frame if target is None else None)
        if step_back and self.wire.pending():  # another call is on its way: keep reading
            step_back = False
        return frame if target is me else _STEP_BACK if step_back else None

    def _next_frame(self) -> tuple | None:
        """The next frame off the socket (this thread has the turn), its new segment mapped; None if the
        peer is gone (the channel is closed then). If it fails, the caller gives the turn back."""
        try:
            frame = self.wire.recv()
        except BaseException as e:
            if isinstance(e, Closed) or self.wire.midframe:
                self._close()
                return None
            raise
        if frame[5] is not None:
            self.incoming.map(frame[3][0][0], frame[5])
            frame = frame[:5] + (None,)
        return frame

    def _put_back(self, frame: tuple) -> None:
        with self._lock:
            self._pushback, self._reading = frame, False
            self._wake_one()

    def _doze(self, me: _Waiter) -> None:
        """Sleep (this thread is in ``_idle``) until woken."""
        try:
            me.wake.acquire()
        except BaseException:  # interrupted (KeyboardInterrupt): leave no trace, pass the turn on
            with self._lock:
                if me.asleep:
                    me.asleep = False
                    self._idle.remove(me)
                self._wake_one()
            raise

    def _idle_server(self) -> _Waiter | None:
        for waiter in self._idle:
            if waiter.server and not waiter.chain:  # one waiting inside a call runs only that call's chain
                return waiter
        return None

    def _wake(self, waiter: _Waiter) -> None:
        if waiter.asleep:
            waiter.asleep = False
            self._idle.remove(waiter)
            waiter.wake.release()

    def _wake_one(self) -> None:
        """The socket is free: let one sleeping thread take the turn."""
        if self._idle:
            self._wake(self._idle[-1])

    # -- serving the peer's requests ----------------------------------------------------

    def serve_forever(self) -> None:
        """Serve requests in this thread until the channel closes."""
        me = self._waiter()
        me.server = True
        try:
            if me is self._main:
                self._serve_main(me)
            self._wait(me, 0)
        except BaseException:
            if not self.closed:
                raise

    def _serve_main(self, me: _Waiter) -> None:
        """The worker's main thread while nobody else reads (the usual case): read a request, run it,
        reply, with none of ``_wait``'s routing; anything else read is put back for the general way.
        Its lock is taken without ``with``: no exception lands here (a cancel raises only inside the
        cancelled call, see ``cancel_on_main``), and the usual call goes through this loop twice."""
        lock, chains, recv = self._lock, self._chains, self.wire.recv
        while True:
            lock.acquire()
            me.finishing = False
            alone = not (me.inbox or self._reading or self.closed or self._pushback is not None)
            if alone:
                self._reading = True
            lock.release()
            if not alone:
                self._step(me, 0)
                continue
            try:
                frame = recv()
            except BaseException as e:  # the host is gone (or a signal): the turn goes back
                with lock:
                    self._reading = False
                    self._wake_one()
                if isinstance(e, Closed) or self.wire.midframe:
                    self._close()
                    continue
                raise
            if frame[5] is not None:
                self.incoming.map(frame[3][0][0], frame[5])
                frame = frame[:5] + (None,)
            lock.acquire()
            mine = frame[0] & KIND == REQUEST and not self._wanted and frame[2] not in chains
            if mine:  # a new call, and no reader wanted meanwhile: this thread runs it
                self._reading = False
            else:
                self._pushback, self._reading = frame, False
                self._wake_one()
            lock.release()
            if mine:
                self._serve(me, frame)

    def _spawn(self, frame: tuple | None) -> None:
        def serve() -> None:
            me = self._waiter()
            me.server = True
            if frame is not None:
                self._serve(me, frame)
            self.serve_forever()

        threading.Thread(target=serve, name=f"polyvenv-{self.peer_name}-server", daemon=True).start()

    def watch(self, bell: Any, gone: Callable[[], None]) -> None:
        """Watch the host's bell (worker side): a ring asks for a reader; its end means the host is gone."""
        self._bell = True

        def watcher() -> None:
            while True:
                try:
                    rings = len(bell.recv(256))
                except OSError:
                    rings = 0
                if not rings:
                    gone()
                    return
                with self._lock:
                    if self._reading:
                        self._wanted += rings
                        continue
                    self._wanted += rings - 1
                    spawn = not self._idle
                    self._wake_one()
                if spawn:
                    self._spawn(None)

        threading.Thread(target=watcher, name="polyvenv-bell", daemon=True).start()

    def serve_in_background(self) -> None:
        """Keep a server thread reading from now on (the peer holds objects it may call at any time)."""
        with self._lock:
            if self._serving:
                return
            self._serving = True
            start = not self._reading
        if start:
            self._spawn(None)

    def _serve(self, me: _Waiter, frame: tuple) -> None:
        rid, chain = frame[1], frame[2]
        outer, me.chain = me.chain, chain
        self._chains[chain] = me
        calling = me.calling
        try:
            try:
                op, target, args = _loads(frame[4]) if frame[0] == REQUEST | PURE and not frame[3] else (
                    self._receive(frame)[1])  # the usual request is plain data, nothing let go of
                frame = None
                me.calling = chain
                try:
                    if chain in self._cancelled:  # given up before it started
                        raise KeyboardInterrupt
                    if not target:
                        result = self.ops[op](*args)
                    elif op == "call":  # the usual request, without a frame for ops.call
                        result = self.exports[target](*args[0], **args[1])
                    else:
                        result = self.ops[op](self.exports[target], *args)
                    kind = REPLY
                finally:
                    me.calling, me.finishing = calling, not outer
            except BaseException as e:
                kind, result = ERROR, exceptions.describe(e)
                if isinstance(e, KeyboardInterrupt) and not self.side:  # the user stops the host: tell, stop
                    self._reply(ERROR, rid, chain, result)
                    raise
            args = None
            try:
                self._send(kind, rid, chain, result, me)
            except BaseException as e:  # as _reply does
                if not self.closed:
                    self._send(ERROR, rid, chain, exceptions.describe(e), me)
        finally:
            me.chain = outer
            if outer == chain:
                self._chains[chain] = me
            else:
                del self._chains[chain]
                if self._cancelled:
                    self._cancelled.discard(chain)

    def _reply(self, kind: int, rid: int, chain: int, result: Any) -> None:
        try:
            self._send(kind, rid, chain, result)
        except BaseException as e:
            if self.closed:
                return
            self._send(ERROR, rid, chain, exceptions.describe(e))

    # -- calls given up ----------------------------------------------------------------
    #
    # Ctrl-C interrupts the host thread waiting on a call, not the worker running it. The host then
    # tells the worker to cancel the call and keeps a thread waiting for its end (so its reply, and the
    # calls it makes back, are still handled), ringing the bell meanwhile so that later calls are read
    # beside it. The worker raises KeyboardInterrupt in the call: at once on its main thread (a signal,
    # so blocking waits and sleeps end too), else when the call next returns from calling the host. A
    # call still running after ``grace`` seconds (compiled code that never checks for signals, code that
    # swallows KeyboardInterrupt) gets the worker stopped (``on_stuck``), so it never blocks later calls.

    def _give_up(self, me: _Waiter, rid: int, chain: int, cancel: bool) -> None:
        """This thread stops waiting for ``rid``: forget it, or (a root call, interrupted) cancel it."""
        stale: list = []
        with self._lock:
            pending = self._replies.get(rid) is me
            settle = pending and cancel and self.on_stuck is not None and not self.closed
            if settle:
                waiter = self._replies[rid] = _Waiter(codec.Encoder(self))
                waiter.chain = chain
                self._chains[chain] = waiter
                self._unsettled += 1
            elif pending:
                del self._replies[rid]
            for frame in list(me.inbox):  # handed to this thread meanwhile: replies end here, calls back go on
                if frame[0] & KIND != REQUEST or settle:
                    me.inbox.remove(frame)
                    (stale if frame[0] & KIND != REQUEST else waiter.inbox).append(frame)
        for frame in stale:
            self._receive(frame)  # their notes still count
        if settle:
            threading.Thread(target=self._settle, args=(waiter, rid, chain), daemon=True,
                             name=f"polyvenv-cancel-{chain}").start()

    def _settle(self, waiter: _Waiter, rid: int, chain: int) -> None:
        """Host: cancel the call given up, wait for its end; stop the worker if it does not come in time."""
        self._local.waiter = waiter
        timer = threading.Timer(self.grace, self._stuck)
        timer.daemon = True
        try:
            self._send(CANCEL, rid, chain, None, waiter)
            if self._ring is not None:
                self._ring(b"!")
            timer.start()
            self._wait(waiter, rid)
        except BaseException:  # whatever the call ended with, or the worker is gone: nobody waits for it
            pass
        finally:
            timer.cancel()
            with self._lock:
                self._replies.pop(rid, None)
                if self._chains.get(chain) is waiter:
                    del self._chains[chain]
                self._unsettled -= 1

    def _stuck(self) -> None:
        if not self.closed and self.on_stuck is not None:
            self.on_stuck()

    def _cancel(self, chain: int) -> bool:
        """Worker, lock held: the host gave ``chain`` up; interrupt it where it runs (see above).
        Whether it runs: if not, it ended already, or it was never sent, or it has not started."""
        self._cancelled.add(chain)  # kept until the chain ends here (one int, if it never runs)
        main = self._main
        if main is not None and main.calling == chain:
            import _signal

            _signal.pthread_kill(self._main_ident, _signal.SIGINT)
        return chain in self._chains

    def cancel_on_main(self) -> None:
        """Worker, in its main thread: a SIGINT there is a cancel, raised only inside the cancelled call."""
        import _signal

        self._main = self._waiter()
        self._main_ident = threading.get_ident()

        def interrupt(signum: int, frame: Any) -> None:
            calling = self._main.calling
            if calling and calling in self._cancelled:
                raise KeyboardInterrupt

        _signal.signal(_signal.SIGINT, interrupt)

    # -- the end ----------------------------------------------------------------------

    def _close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for waiter in list(self._idle):
                self._wake(waiter)
        self.wire.close()
        if self.on_close is not None:
            self.on_close()

    def close(self) -> None:
        """Stop talking to the peer: pending and later calls raise ``closed_error()``."""
        self._close()
