"""Record what a Python quota tracker did, for ``quota-verify check-history --model quota``.

A history is JSON Lines, one event per line in real-time order (the checker takes the line
number as the event's time)::

    {"process": 0, "type": "invoke", "f": "record", "key": "tiingo", "value": 1, "time": 8120}
    {"process": 0, "type": "ok", "f": "record", "key": "tiingo", "value": 1, "time": 15337}

``process`` is a small integer per thread, ``type`` is ``invoke`` before the call and ``ok``,
``fail`` or ``info`` after it, ``key`` is the service and ``time`` is nanoseconds on the
monotonic clock since the recorder was opened (the checker ignores it; it is for people).
The invocation line is written (and its time taken) before the tracker is called, the
completion after the call returned, both under the recorder's lock: so every operation's
recorded interval contains its real one, which is what makes a verdict sound.

What each operation's ``value`` is (crates/linearizability/src/models/quota.rs):

* ``record``: invoke = the count (at least 1); ok = ``used`` right after the call, or null.
* ``admit`` (check and record in one step): invoke = the count; ok =
  ``{"admitted": bool, "used": n}`` (``used`` after the decision, or null).
* ``refund``: invoke = the count; ok = ``used`` right after the call, or null.
* ``read``: ok = ``[used, remaining]``, or just ``used``.
* ``can-call``: ok = true or false.
* ``sync``: no value, no effect on the counts.

An exception from the tracker is recorded as ``info`` (the outcome is unknown: the call may or
may not have taken effect) and re-raised; exceptions of the types given as ``fail_on`` are
recorded as ``fail`` instead (the call certainly had no effect, e.g. a rejected argument).

Typical use::

    real = QuotaTracker()          # the service's tracker, fresh: every service at used = 0
    with HistoryRecorder("history.jsonl") as recorder:
        tracker = RecordingTracker(
            real, recorder,
            record="record_call",              # a method name: real.record_call(service, count)
            can_call="can_call",
            read=real.get_usage,               # may return a mapping {"used": .., "remaining": ..}
        )
        ...  # threads calling tracker.record(s, n), tracker.can_call(s), tracker.read(s)
    # then: quota-verify check-history --model quota history.jsonl   (exit 0 = linearizable)

Standard library only; Python 3.9 or later.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Type, Union

__all__ = [
    "HistoryRecorder",
    "Pending",
    "RecordingTracker",
    "RecorderError",
    "MAX_COUNT",
]

#: The largest count or ``used`` the checker reads (an unsigned 64-bit integer).
MAX_COUNT = 2**64 - 1

#: The operations of the quota model, by the name a history gives them.
OPERATIONS = ("record", "admit", "refund", "read", "can-call", "sync")


class RecorderError(RuntimeError):
    """The recorder was used in a way that would make the history wrong or unusable."""


def _check_service(service: Any) -> str:
    if not isinstance(service, str) or not service:
        raise TypeError(
            f"a service must be a non-empty str (it becomes the history's key), got {service!r}"
        )
    return service


def _check_count(count: Any, what: str) -> int:
    # bool is an int subclass: record(s, True) is a mistake, not a count of 1.
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"{what} count must be a positive int, got {count!r}")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"{what} count must be a positive int (1 to 2**64-1), got {count!r}")
    return count


def _used(value: Any, what: str) -> Optional[int]:
    """A tracker's ``used`` (or ``remaining``) as the checker reads it: an int >= 0 or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int >= 0 or None, got {value!r}")
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{what} must be an int >= 0 (at most 2**64-1), got {value!r}")
    return value


class Pending:
    """An operation invoked and not yet completed: call exactly one of ``ok``, ``fail``, ``info``.

    Made by :meth:`HistoryRecorder.invoke`. The wrappers of :class:`RecordingTracker` use it;
    use it directly for an operation they do not cover.
    """

    __slots__ = ("_recorder", "process", "f", "key", "_done")

    def __init__(self, recorder: "HistoryRecorder", process: int, f: str, key: Optional[str]):
        self._recorder = recorder
        self.process = process
        self.f = f
        self.key = key
        self._done = False

    def ok(self, value: Any = None) -> None:
        """The operation returned ``value`` (already in the history's JSON form)."""
        self._complete("ok", value)

    def fail(self) -> None:
        """The operation certainly had no effect."""
        self._complete("fail", None)

    def info(self) -> None:
        """The outcome is unknown: it may or may not have taken effect."""
        self._complete("info", None)

    @property
    def done(self) -> bool:
        """Whether a completion was recorded."""
        return self._done

    def _complete(self, kind: str, value: Any) -> None:
        if self._done:
            raise RecorderError(
                f"process {self.process}'s {self.f!r} was completed already; an operation "
                "completes once"
            )
        self._done = True
        self._recorder._complete(self, kind, value)


class HistoryRecorder:
    """A thread-safe writer of a ``check-history`` JSON Lines history.

    ``destination`` is a path (the file is created, or truncated) or an open text stream (it
    is flushed, not closed, by :meth:`close`). Every line is written whole, under one lock,
    and handed to the operating system at once (``flush_every_line``, on by default), so a
    process that dies mid-run leaves a usable history: its operations in flight count as
    ``info``. With ``fsync=True`` :meth:`close` also forces a file it opened to disk.

    Each thread gets a process id on its first operation: 0, 1, 2, ... in that order, never
    reused (a new thread gets a new id even if the OS reuses the thread's ident). A thread
    that starts an operation while its previous one has not completed (a tracker adapter
    calling back into the recorder, say) is refused with :class:`RecorderError`: a process's
    operations must not overlap. For asyncio tasks, which share a thread, pass ``process=``
    to :meth:`invoke` (one id per task).
    """

    def __init__(
        self,
        destination: Union[str, "os.PathLike[str]", io.TextIOBase, Any],
        *,
        flush_every_line: bool = True,
        fsync: bool = False,
    ) -> None:
        if isinstance(destination, (str, bytes, os.PathLike)):
            self._stream = open(destination, "w", encoding="utf-8", newline="\n")
            self._owns_stream = True
        elif hasattr(destination, "write"):
            self._stream = destination
            self._owns_stream = False
        else:
            raise TypeError(
                "destination must be a path or a text stream with .write(), got "
                f"{destination!r}"
            )
        self.path = os.fspath(destination) if self._owns_stream else None
        self._flush_every_line = flush_every_line
        self._fsync = fsync
        self._lock = threading.Lock()
        self._local = threading.local()
        self._next_process = 0
        self._pending: Dict[int, Pending] = {}
        self._closed = False
        #: ``time.monotonic_ns()`` when the recorder was opened: each line's ``time`` counts
        #: from here.
        self.epoch_ns = time.monotonic_ns()
        self.invocations = 0
        self.completions = 0

    # -- the low-level interface ---------------------------------------------------------------

    def invoke(
        self,
        f: str,
        key: Optional[str],
        value: Any = None,
        *,
        process: Optional[int] = None,
    ) -> Pending:
        """Write the invocation of ``f`` on ``key`` now; return the handle to complete it.

        Call this immediately before the operation starts and complete the handle after it
        returned. ``process`` defaults to the calling thread's id.
        """
        if f not in OPERATIONS:
            raise ValueError(
                f"the quota model has no operation {f!r}: expected one of {OPERATIONS}"
            )
        if key is not None:
            _check_service(key)
        if process is None:
            process = self._thread_process()
        elif isinstance(process, bool) or not isinstance(process, int) or process < 0:
            raise TypeError(f"process must be an int >= 0, got {process!r}")
        with self._lock:
            if self._closed:
                raise RecorderError(f"the recorder is closed: cannot record {f!r} on {key!r}")
            open_op = self._pending.get(process)
            if open_op is not None:
                raise RecorderError(
                    f"process {process} invokes {f!r} on {key!r} while its {open_op.f!r} on "
                    f"{open_op.key!r} has not completed: a thread's operations must not "
                    "overlap (is an adapter calling the recording wrapper again?)"
                )
            pending = Pending(self, process, f, key)
            self._write_locked(process, "invoke", f, key, value)
            self._pending[process] = pending
            self.invocations += 1
        return pending

    def _complete(self, pending: Pending, kind: str, value: Any) -> None:
        with self._lock:
            if self._pending.get(pending.process) is not pending:
                raise RecorderError(
                    f"process {pending.process}'s {pending.f!r} is not in flight on this recorder"
                )
            del self._pending[pending.process]
            if self._closed:
                raise RecorderError(
                    f"the recorder was closed while process {pending.process}'s {pending.f!r} "
                    f"on {pending.key!r} was in flight; it stays in the history with no "
                    "completion (checked as info): close the recorder after the workload ends"
                )
            self._write_locked(pending.process, kind, pending.f, pending.key, value)
            self.completions += 1

    def _thread_process(self) -> int:
        process = getattr(self._local, "process", None)
        if process is None:
            with self._lock:
                process = self._next_process
                self._next_process += 1
            self._local.process = process
        return process

    def _write_locked(
        self, process: int, kind: str, f: str, key: Optional[str], value: Any
    ) -> None:
        event: Dict[str, Any] = {"process": process, "type": kind, "f": f}
        if key is not None:
            event["key"] = key
        event["value"] = value
        # Taken under the lock, so times never decrease down the file.
        event["time"] = time.monotonic_ns() - self.epoch_ns
        line = json.dumps(event, separators=(", ", ": "), allow_nan=False) + "\n"
        self._stream.write(line)
        if self._flush_every_line:
            self._stream.flush()

    # -- running an operation -------------------------------------------------------------------

    def call(
        self,
        f: str,
        key: Optional[str],
        value: Any,
        fn: Callable[[], Any],
        encode: Callable[[Any], Any] = lambda result: None,
        fail_on: Tuple[Type[BaseException], ...] = (),
    ) -> Any:
        """Invoke ``f``, run ``fn()``, record its completion and return what it returned.

        ``encode`` turns the result into the completion's JSON value; if it raises (the
        result is not what the history can say), the completion is ``info`` and the error
        propagates. An exception from ``fn`` is recorded as ``info`` (``fail`` for the types in
        ``fail_on``) and re-raised.
        """
        pending = self.invoke(f, key, value)
        try:
            result = fn()
        except fail_on:
            pending.fail()
            raise
        except BaseException:
            pending.info()
            raise
        try:
            encoded = encode(result)
        except BaseException:
            pending.info()
            raise
        pending.ok(encoded)
        return result

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Operations invoked and not completed."""
        with self._lock:
            return len(self._pending)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def flush(self) -> None:
        """Hand every line written so far to the operating system."""
        with self._lock:
            if not self._closed:
                self._stream.flush()

    def close(self) -> None:
        """Flush (and close a file the recorder opened). Idempotent.

        Operations still in flight keep their invocation line and no completion, which the
        checker reads as ``info``; completing them later raises :class:`RecorderError`.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stream.flush()
            if self._owns_stream:
                if self._fsync:
                    os.fsync(self._stream.fileno())
                self._stream.close()

    def __enter__(self) -> "HistoryRecorder":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# -- wrapping a tracker ---------------------------------------------------------------------------

Adapter = Union[None, str, Callable[..., Any]]


def _encode_record(result: Any) -> Optional[int]:
    return _used(result, "a record adapter's result (used right after the call)")


def _encode_refund(result: Any) -> Optional[int]:
    return _used(result, "a refund adapter's result (used right after the call)")


def _encode_can_call(result: Any) -> bool:
    if not isinstance(result, bool):
        raise TypeError(f"a can_call adapter must return True or False, got {result!r}")
    return result


def _fields(result: Any, names: Iterable[str]) -> Optional[Tuple[Any, ...]]:
    """``result``'s fields by name, from a mapping or attributes; None if it has neither."""
    names = tuple(names)
    if isinstance(result, dict):
        if names[0] in result:
            return tuple(result.get(n) for n in names)
        return None
    if hasattr(result, names[0]):
        return tuple(getattr(result, n, None) for n in names)
    return None


def _encode_read(result: Any) -> Any:
    what = (
        "a read adapter must return (used, remaining), used, a mapping with 'used' (and "
        "'remaining'), or an object with .used (and .remaining)"
    )
    if isinstance(result, (tuple, list)):
        if len(result) != 2:
            raise TypeError(f"{what}; got a sequence of {len(result)}: {result!r}")
        used, remaining = result
    elif isinstance(result, int) and not isinstance(result, bool):
        used, remaining = result, None
    else:
        fields = _fields(result, ("used", "remaining"))
        if fields is None:
            raise TypeError(f"{what}; got {result!r}")
        used, remaining = fields
    used = _used(used, "a read's used")
    if used is None:
        raise TypeError(f"{what}; got used=None in {result!r}")
    remaining = _used(remaining, "a read's remaining")
    return used if remaining is None else [used, remaining]


def _encode_admit(result: Any) -> Dict[str, Any]:
    what = (
        "an admit adapter must return True/False, (admitted, used), a mapping with "
        "'admitted' (and 'used'), or an object with .admitted (and .used)"
    )
    if isinstance(result, bool):
        admitted, used = result, None
    elif isinstance(result, (tuple, list)) and len(result) == 2:
        admitted, used = result
    else:
        fields = _fields(result, ("admitted", "used"))
        if fields is None:
            raise TypeError(f"{what}; got {result!r}")
        admitted, used = fields
    if not isinstance(admitted, bool):
        raise TypeError(f"{what}; got admitted={admitted!r} in {result!r}")
    return {"admitted": admitted, "used": _used(used, "an admit's used")}


class RecordingTracker:
    """A tracker whose every operation is recorded in a :class:`HistoryRecorder`.

    Each adapter says how to run one operation on ``tracker``:

    * a callable, called as ``adapter(service, count)`` (record, admit, refund) or
      ``adapter(service)`` (read, can_call) or ``adapter(service)`` / ``adapter()`` (sync,
      with or without a service): a bound method, or a lambda adapting the tracker's names
      and return values;
    * a str, the name of a method of ``tracker`` called the same way;
    * None (the default): the method of ``tracker`` with the operation's own name (``record``,
      ``admit``, ``refund``, ``read``, ``can_call``, ``sync``) if it has one; otherwise the
      wrapper's method raises :class:`RecorderError` saying which adapter to pass.

    What the adapters must return: record and refund ``used`` right after the call (an int,
    or None if the tracker does not say); admit True/False, ``(admitted, used)`` or a mapping
    / object with ``admitted`` and ``used``; read ``(used, remaining)``, ``used``, or a
    mapping / object with ``used`` and ``remaining``; can_call a bool.

    ``key`` maps a service to the history's key (default: the service itself). The checker
    checks ``remaining``, can-call answers and admissions against its limits: by default the
    original service's (tiingo 500, finnhub 60, sendgrid 100; ceiling 80 %), other services'
    answers unchecked (their counts still are). A tracker configured with other limits gives
    its own to the checker (``check-history --limits``/``--ceiling-percent``), or maps its services to keys the checker has no limit for (e.g.
    ``key=lambda s: "py-" + s``).

    ``fail_on`` lists exception types that mean "certainly no effect" (recorded as
    ``fail``); every other exception is ``info``. The tracker itself stays at ``.tracker``;
    calls made on it directly are not recorded (and would make the history wrong: record
    every operation of the run).
    """

    def __init__(
        self,
        tracker: Any,
        recorder: HistoryRecorder,
        *,
        record: Adapter = None,
        can_call: Adapter = None,
        read: Adapter = None,
        admit: Adapter = None,
        refund: Adapter = None,
        sync: Adapter = None,
        key: Optional[Callable[[str], str]] = None,
        fail_on: Iterable[Type[BaseException]] = (),
    ) -> None:
        if not isinstance(recorder, HistoryRecorder):
            raise TypeError(f"recorder must be a HistoryRecorder, got {recorder!r}")
        self.tracker = tracker
        self.recorder = recorder
        self._key = key if key is not None else (lambda service: service)
        self._fail_on = tuple(fail_on)
        for t in self._fail_on:
            if not (isinstance(t, type) and issubclass(t, BaseException)):
                raise TypeError(f"fail_on must list exception types, got {t!r}")
        self._adapters = {
            name: self._resolve(name, adapter)
            for name, adapter in (
                ("record", record),
                ("can_call", can_call),
                ("read", read),
                ("admit", admit),
                ("refund", refund),
                ("sync", sync),
            )
        }

    def _resolve(self, name: str, adapter: Adapter) -> Optional[Callable[..., Any]]:
        if adapter is None:
            method = getattr(self.tracker, name, None)
            return method if callable(method) else None
        if isinstance(adapter, str):
            method = getattr(self.tracker, adapter, None)
            if not callable(method):
                raise AttributeError(
                    f"{name}={adapter!r}: {type(self.tracker).__name__} has no method {adapter!r}"
                )
            return method
        if callable(adapter):
            return adapter
        raise TypeError(f"{name} must be a callable, a method name or None, got {adapter!r}")

    def _adapter(self, name: str) -> Callable[..., Any]:
        adapter = self._adapters[name]
        if adapter is None:
            raise RecorderError(
                f"{type(self.tracker).__name__} has no method {name!r}: pass {name}=... to "
                "RecordingTracker (a callable or the tracker's method name)"
            )
        return adapter

    def supports(self, operation: str) -> bool:
        """Whether this wrapper has an adapter for ``operation`` (e.g. ``"admit"``)."""
        return self._adapters.get(operation.replace("-", "_")) is not None

    def _counted(self, f: str, service: str, count: int, encode: Callable[[Any], Any]) -> Any:
        _check_service(service)
        _check_count(count, f"a {f}'s" if f != "admit" else "an admit's")
        adapter = self._adapter(f)
        return self.recorder.call(
            f, self._key(service), count, lambda: adapter(service, count), encode, self._fail_on
        )

    def record(self, service: str, count: int = 1) -> Any:
        """Record ``count`` calls to ``service``; return the adapter's result (used after)."""
        return self._counted("record", service, count, _encode_record)

    def admit(self, service: str, count: int = 1) -> Any:
        """Admit ``count`` calls if they fit under the ceiling, in one step; return the result."""
        return self._counted("admit", service, count, _encode_admit)

    def refund(self, service: str, count: int = 1) -> Any:
        """Give back ``count`` admitted calls; return the adapter's result (used after)."""
        return self._counted("refund", service, count, _encode_refund)

    def read(self, service: str) -> Any:
        """Read ``service``'s usage; return the adapter's result (e.g. ``(used, remaining)``)."""
        _check_service(service)
        adapter = self._adapter("read")
        return self.recorder.call(
            "read", self._key(service), None, lambda: adapter(service), _encode_read, self._fail_on
        )

    def can_call(self, service: str) -> bool:
        """Whether another call to ``service`` may be made; return the adapter's answer."""
        _check_service(service)
        adapter = self._adapter("can_call")
        return self.recorder.call(
            "can-call",
            self._key(service),
            None,
            lambda: adapter(service),
            _encode_can_call,
            self._fail_on,
        )

    def sync(self, service: Optional[str] = None) -> Any:
        """Push pending counts to the store (no effect on the counts); return the result."""
        adapter = self._adapter("sync")
        if service is None:
            return self.recorder.call("sync", None, None, adapter, fail_on=self._fail_on)
        _check_service(service)
        return self.recorder.call(
            "sync", self._key(service), None, lambda: adapter(service), fail_on=self._fail_on
        )
