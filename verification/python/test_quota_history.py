"""Tests of quota_history: the recorder itself, and verdicts of the real checker on its output.

Run from this directory: ``QUOTA_VERIFY=/path/to/quota-verify python3 -m unittest -v
test_quota_history``. The tests that judge histories run that binary (``check-history
--model quota``); with QUOTA_VERIFY unset or not an executable they fail, saying so.
``cargo nextest run -p quota-verify --test python_recorder`` runs this suite with the binary
it built.

Two tiny trackers stand in for a service's: ``LockedTracker`` holds one lock across each
read-modify-write (the fix) and ``UnlockedTracker`` is the same code with the lock left out
(the original bug: read, yield, write back). The same 8-thread workload runs against each.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Tuple

from quota_history import HistoryRecorder, RecorderError, RecordingTracker

#: The original service's limits, which `check-history --model quota` knows.
LIMITS = {"tiingo": 500, "finnhub": 60, "sendgrid": 100}
#: The workload's services: three the checker knows the limits of, one it does not.
SERVICES = ("tiingo", "finnhub", "sendgrid", "internal")
THREADS = 8
OPS_PER_THREAD = 50
#: How long a tracker pauses between reading `used` and writing it back. A real sleep (not
#: sleep(0)) so that another thread runs in the gap even with one free core.
GAP_SECONDS = 0.0001
CHECK_TIMEOUT_SECONDS = "120"


def ceiling(service: str) -> Optional[int]:
    """The admission ceiling: 80 % of the limit, rounded up (as the checker's model)."""
    limit = LIMITS.get(service)
    return None if limit is None else -(-limit * 80 // 100)


class LockedTracker:
    """A quota tracker with one lock around every read-modify-write: linearizable."""

    def __init__(self) -> None:
        self._lock: Any = threading.Lock()
        self._used: Dict[str, int] = {}

    def record(self, service: str, count: int = 1) -> int:
        with self._lock:
            used = self._used.get(service, 0)
            time.sleep(GAP_SECONDS)
            self._used[service] = used + count
            return used + count

    def admit(self, service: str, count: int = 1) -> Tuple[bool, int]:
        with self._lock:
            used = self._used.get(service, 0)
            time.sleep(GAP_SECONDS)
            top = ceiling(service)
            if top is not None and used + count > top:
                return False, used
            self._used[service] = used + count
            return True, used + count

    def refund(self, service: str, count: int = 1) -> int:
        with self._lock:
            used = self._used.get(service, 0)
            if count > used:
                raise ValueError(f"refund of {count} with {used} used")
            time.sleep(GAP_SECONDS)
            self._used[service] = used - count
            return used - count

    def read(self, service: str) -> Tuple[int, Optional[int]]:
        with self._lock:
            used = self._used.get(service, 0)
            limit = LIMITS.get(service)
            return used, None if limit is None else max(0, limit - used)

    def can_call(self, service: str) -> bool:
        with self._lock:
            top = ceiling(service)
            return top is None or self._used.get(service, 0) < top

    def sync(self) -> None:
        with self._lock:
            pass


class UnlockedTracker(LockedTracker):
    """The same tracker with its lock left out: read, yield, write back (the lost update)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = contextlib.nullcontext()


def quota_verify() -> str:
    """The checker binary from QUOTA_VERIFY, or a test failure saying what is wrong."""
    path = os.environ.get("QUOTA_VERIFY")
    if not path:
        raise AssertionError(
            "QUOTA_VERIFY is not set: set it to the quota-verify binary (e.g. "
            "target/debug/quota-verify after `cargo build -p quota-verify --bin "
            "quota-verify`), or run `cargo nextest run -p quota-verify --test python_recorder`"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(f"QUOTA_VERIFY={path!r} is not an executable file")
    return path


def check_history(path: str) -> Tuple[int, Dict[str, Any], float]:
    """Runs `check-history --model quota --json`: (exit code, its JSON object, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [quota_verify(), "check-history", "--model", "quota", path, "--json",
         "--timeout", CHECK_TIMEOUT_SECONDS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - started
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"check-history exited {done.returncode} without a JSON report:\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        ) from None
    return done.returncode, report, seconds


def lines_of(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def run_workload(tracker: Any, path: str, seed: int = 7) -> Dict[str, Any]:
    """THREADS threads of OPS_PER_THREAD mixed operations on `tracker`, recorded in `path`.

    Returns what the workload expects each service's `used` to be (from the results the
    threads got), what the final reads (recorded too, after every thread ended) say, and the
    operation counts.
    """
    recorder = HistoryRecorder(path)
    wrapped = RecordingTracker(tracker, recorder, fail_on=(ValueError,))
    start = threading.Barrier(THREADS)
    expected: Dict[str, int] = defaultdict(int)
    ops: Counter = Counter()
    errors: List[BaseException] = []
    tally = threading.Lock()

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine: Dict[str, int] = defaultdict(int)  # admitted and not refunded, per service
        local_ops: Counter = Counter()
        start.wait()
        try:
            for _ in range(OPS_PER_THREAD):
                service = rng.choices(SERVICES, weights=(4, 3, 2, 1))[0]
                kind = rng.choices(
                    ("record", "admit", "refund", "read", "can_call", "sync"),
                    weights=(40, 15, 10, 15, 15, 5),
                )[0]
                count = rng.choice((1, 1, 1, 2, 3))
                if kind == "refund" and mine[service] == 0:
                    kind = "record"
                if kind == "record":
                    wrapped.record(service, count)
                    mine_delta = 0
                    with tally:
                        expected[service] += count
                elif kind == "admit":
                    admitted, _ = wrapped.admit(service, count)
                    mine_delta = count if admitted else 0
                elif kind == "refund":
                    count = min(count, mine[service])
                    try:
                        wrapped.refund(service, count)
                        mine_delta = -count
                    except ValueError:  # recorded as fail: the tracker refused it
                        mine_delta = 0
                        local_ops["refund refused"] += 1
                elif kind == "read":
                    wrapped.read(service)
                    mine_delta = 0
                elif kind == "can_call":
                    wrapped.can_call(service)
                    mine_delta = 0
                else:
                    wrapped.sync()
                    mine_delta = 0
                mine[service] += mine_delta
                local_ops[kind] += 1
            with tally:
                for service, n in mine.items():
                    expected[service] += n
                ops.update(local_ops)
        except BaseException as e:  # reported by the test, not lost in a thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        recorder.close()
        raise errors[0]
    final = {service: wrapped.read(service)[0] for service in SERVICES}
    recorder.close()
    return {
        "expected": dict(expected),
        "final": final,
        "lost": {s: expected[s] - final[s] for s in SERVICES},
        "ops": dict(ops),
        "recorded": recorder.invocations,
        "workload_seconds": elapsed,
    }


def summary(name: str, run: Dict[str, Any], code: int, report: Dict[str, Any], secs: float) -> str:
    return (
        f"\n  {name}: {run['recorded']} operations recorded ({THREADS} threads x "
        f"{OPS_PER_THREAD} + {len(SERVICES)} final reads) in {run['workload_seconds']:.2f} s; "
        f"check-history exit {code}, {report.get('verdict')}, "
        f"{report.get('partitions')} partitions, checker {report.get('elapsed_ms', 0):.1f} ms "
        f"({secs:.2f} s with start-up); lost updates per service {run['lost']}"
    )


class CheckerVerdicts(unittest.TestCase):
    """The real checker on recorded histories: the fix passes, the bug is caught."""

    def setUp(self) -> None:
        quota_verify()  # fail first, and clearly, without the binary
        self.dir = tempfile.TemporaryDirectory(prefix="quota-history-")
        self.addCleanup(self.dir.cleanup)

    def path(self, name: str) -> str:
        return os.path.join(self.dir.name, name)

    def test_locked_tracker_is_linearizable(self) -> None:
        path = self.path("locked.jsonl")
        run = run_workload(LockedTracker(), path)
        code, report, secs = check_history(path)
        print(summary("locked", run, code, report, secs), file=sys.stderr)
        self.assertEqual(run["recorded"], THREADS * OPS_PER_THREAD + len(SERVICES))
        self.assertEqual(report["operations"], run["recorded"])
        self.assertEqual(
            (code, report["verdict"]), (0, "linearizable"),
            f"the locked tracker was judged not linearizable: {json.dumps(report)[:3000]}",
        )
        self.assertEqual(run["lost"], {s: 0 for s in SERVICES})
        # The mix did exercise every operation, refusals included.
        for kind in ("record", "admit", "refund", "read", "can_call", "sync"):
            self.assertGreater(run["ops"].get(kind, 0), 0, kind)
        events = lines_of(read_text(path))
        self.assertTrue(
            any(e["f"] == "can-call" and e["type"] == "ok" and e["value"] is False for e in events),
            "no can-call was refused: the workload never reached a ceiling",
        )

    def test_unlocked_tracker_is_caught(self) -> None:
        path = self.path("unlocked.jsonl")
        run = run_workload(UnlockedTracker(), path)
        code, report, secs = check_history(path)
        print(summary("unlocked", run, code, report, secs), file=sys.stderr)
        self.assertEqual(report["operations"], run["recorded"])
        self.assertEqual(
            (code, report["verdict"]), (1, "not-linearizable"),
            f"the unlocked tracker was not caught: {json.dumps(report)[:3000]}",
        )
        failing = report["failing_partition"]
        self.assertIn(failing["key"], SERVICES)
        self.assertIsNotNone(failing["stuck"], report)
        print(
            f"  caught on {failing['key']!r}: the longest linearizable prefix has "
            f"{len(failing['longest_prefix'])} of {failing['operations']} operations, then "
            f"line {failing['stuck']['line']}: p{failing['stuck']['process']} "
            f"{failing['stuck']['operation']}",
            file=sys.stderr,
        )
        self.assertGreater(sum(run["lost"].values()), 0, f"no update was lost: {run}")

    def test_two_writers_that_both_read_zero_are_caught(self) -> None:
        """A deterministic lost update (a barrier between read and write): the README's case."""
        both_read = threading.Barrier(2)

        class BarrierTracker:
            def __init__(self) -> None:
                self.used = 0

            def record(self, service: str, count: int) -> int:
                used = self.used
                both_read.wait(timeout=10)
                self.used = used + count
                return self.used

        path = self.path("barrier.jsonl")
        with HistoryRecorder(path) as recorder:
            tracker = RecordingTracker(BarrierTracker(), recorder)
            threads = [threading.Thread(target=tracker.record, args=("tiingo", 1)) for _ in "ab"]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        events = lines_of(read_text(path))
        self.assertEqual([e["type"] for e in events], ["invoke", "invoke", "ok", "ok"])
        self.assertEqual([e["value"] for e in events[2:]], [1, 1])
        code, report, _ = check_history(path)
        self.assertEqual((code, report["verdict"]), (1, "not-linearizable"), report)

    def test_an_operation_in_flight_at_close_counts_as_unknown(self) -> None:
        entered, release = threading.Event(), threading.Event()

        class SlowTracker(LockedTracker):
            def record(self, service: str, count: int = 1) -> int:
                if count == 2:  # the second call: still running when the recorder closes
                    entered.set()
                    release.wait(timeout=10)
                return super().record(service, count)

        path = self.path("unfinished.jsonl")
        recorder = HistoryRecorder(path)
        tracker = RecordingTracker(SlowTracker(), recorder)
        tracker.record("finnhub", 5)
        failures: List[BaseException] = []

        def late() -> None:
            try:
                tracker.record("finnhub", 2)
            except RecorderError as e:
                failures.append(e)

        t = threading.Thread(target=late)
        t.start()
        entered.wait(timeout=10)
        self.assertEqual(recorder.in_flight, 1)
        recorder.close()
        release.set()
        t.join()
        self.assertEqual(len(failures), 1)
        self.assertIn("closed while process", str(failures[0]))
        events = lines_of(read_text(path))
        self.assertEqual([e["type"] for e in events], ["invoke", "ok", "invoke"])
        # No completion: the checker reads it as "may or may not have happened".
        code, report, _ = check_history(path)
        self.assertEqual((code, report["verdict"]), (0, "linearizable"), report)


class Recorder(unittest.TestCase):
    """The recorder's own guarantees (no binary needed)."""

    def recorded(
        self, tracker: Any = None, **adapters: Any
    ) -> Tuple[RecordingTracker, io.StringIO]:
        out = io.StringIO()
        recorder = HistoryRecorder(out)
        self.addCleanup(recorder.close)
        return RecordingTracker(tracker or LockedTracker(), recorder, **adapters), out

    def test_lines_are_well_formed(self) -> None:
        tracker, out = self.recorded()
        self.assertEqual(tracker.record("finnhub", 3), 3)
        self.assertEqual(tracker.read("finnhub"), (3, 57))
        self.assertEqual(tracker.read("internal"), (0, None))
        self.assertIs(tracker.can_call("finnhub"), True)
        self.assertEqual(tracker.admit("finnhub", 45), (True, 48))
        self.assertEqual(tracker.admit("finnhub", 1), (False, 48))
        self.assertEqual(tracker.refund("finnhub", 2), 46)
        tracker.sync()
        events = lines_of(out.getvalue())
        self.assertEqual(len(events), 16)
        for e in events:
            self.assertEqual(set(e) - {"key"}, {"process", "type", "f", "value", "time"}, e)
            self.assertEqual(e["process"], 0)
            self.assertIsInstance(e["time"], int)
        self.assertEqual([e["type"] for e in events], ["invoke", "ok"] * 8)
        pairs = [(e["f"], e.get("key"), e["value"]) for e in events]
        self.assertEqual(
            pairs,
            [
                ("record", "finnhub", 3), ("record", "finnhub", 3),
                ("read", "finnhub", None), ("read", "finnhub", [3, 57]),
                ("read", "internal", None), ("read", "internal", 0),
                ("can-call", "finnhub", None), ("can-call", "finnhub", True),
                ("admit", "finnhub", 45), ("admit", "finnhub", {"admitted": True, "used": 48}),
                ("admit", "finnhub", 1), ("admit", "finnhub", {"admitted": False, "used": 48}),
                ("refund", "finnhub", 2), ("refund", "finnhub", 46),
                ("sync", None, None), ("sync", None, None),
            ],
        )
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times))

    def test_invoke_is_written_before_the_call_and_completion_after(self) -> None:
        out = io.StringIO()
        recorder = HistoryRecorder(out)
        seen: List[Any] = []

        def record(service: str, count: int) -> int:
            seen.append((lines_of(out.getvalue()), time.monotonic_ns() - recorder.epoch_ns))
            return 7

        RecordingTracker(object(), recorder, record=record).record("tiingo", 2)
        during, at = seen[0]
        self.assertEqual([e["type"] for e in during], ["invoke"])
        self.assertEqual(during[0]["value"], 2)
        after = lines_of(out.getvalue())
        self.assertEqual([e["type"] for e in after], ["invoke", "ok"])
        self.assertEqual(after[1]["value"], 7)
        # The recorded interval contains the call.
        self.assertLessEqual(after[0]["time"], at)
        self.assertLessEqual(at, after[1]["time"])

    def test_an_exception_is_recorded_as_info_and_raised(self) -> None:
        def broken(service: str, count: int) -> int:
            raise ConnectionError("store unreachable")

        tracker, out = self.recorded(object(), record=broken)
        with self.assertRaises(ConnectionError):
            tracker.record("tiingo", 1)
        self.assertEqual([e["type"] for e in lines_of(out.getvalue())], ["invoke", "info"])
        # A type listed in fail_on means "no effect": fail.
        tracker, out = self.recorded(object(), record=broken, fail_on=(ConnectionError,))
        with self.assertRaises(ConnectionError):
            tracker.record("tiingo", 1)
        self.assertEqual([e["type"] for e in lines_of(out.getvalue())], ["invoke", "fail"])
        # The thread's operation completed: its next one is not refused as overlapping.
        with self.assertRaises(ConnectionError):
            tracker.record("tiingo", 1)
        self.assertEqual(tracker.recorder.in_flight, 0)

    def test_misuse_is_refused_before_anything_is_recorded(self) -> None:
        calls: List[Any] = []
        tracker, out = self.recorded(
            object(), record=lambda s, n: calls.append(n), read=lambda s: calls.append(s)
        )
        for bad in (0, -1, True, 1.5, "2", None, 2**64):
            with self.assertRaises((TypeError, ValueError), msg=repr(bad)) as caught:
                tracker.record("tiingo", bad)
            self.assertIn("positive int", str(caught.exception))
        for bad in ("", None, 3, b"tiingo"):
            with self.assertRaises(TypeError, msg=repr(bad)):
                tracker.record(bad, 1)
            with self.assertRaises(TypeError, msg=repr(bad)):
                tracker.read(bad)
        with self.assertRaises(RecorderError) as caught:
            tracker.can_call("tiingo")
        self.assertIn("pass can_call=", str(caught.exception))
        with self.assertRaises(ValueError):
            tracker.recorder.invoke("increment", "tiingo", 1)
        self.assertEqual((calls, out.getvalue()), ([], ""))
        with self.assertRaises(AttributeError):
            RecordingTracker(LockedTracker(), tracker.recorder, record="record_call")
        with self.assertRaises(TypeError):
            RecordingTracker(LockedTracker(), object())

    def test_a_result_the_history_cannot_say_is_info_and_an_error(self) -> None:
        cases = [
            ({"record": lambda s, n: "3"}, "record", ("tiingo", 1)),
            ({"record": lambda s, n: -1}, "record", ("tiingo", 1)),
            ({"can_call": lambda s: 1}, "can_call", ("tiingo",)),
            ({"read": lambda s: (1, 2, 3)}, "read", ("tiingo",)),
            ({"admit": lambda s, n: "yes"}, "admit", ("tiingo", 1)),
        ]
        for adapters, method, args in cases:
            tracker, out = self.recorded(object(), **adapters)
            with self.assertRaises((TypeError, ValueError), msg=method):
                getattr(tracker, method)(*args)
            self.assertEqual(
                [e["type"] for e in lines_of(out.getvalue())], ["invoke", "info"], method
            )

    def test_adapters_by_name_callable_and_result_shape(self) -> None:
        class Usage:
            def __init__(self, used: int, remaining: int) -> None:
                self.used, self.remaining = used, remaining

        class OtherTracker:
            def __init__(self) -> None:
                self.n = 0

            def record_call(self, service: str, count: int = 1) -> Dict[str, int]:
                self.n += count
                return {"used": self.n}

            def get_usage(self, service: str) -> Dict[str, Any]:
                return {"used": self.n, "remaining": 100 - self.n, "percent": self.n}

            def usage_object(self, service: str) -> Usage:
                return Usage(self.n, 100 - self.n)

            def try_call(self, service: str, count: int) -> Dict[str, Any]:
                self.n += count
                return {"admitted": True, "used": self.n, "reason": None}

        real = OtherTracker()
        tracker, out = self.recorded(
            real,
            record=lambda s, n: real.record_call(s, n)["used"],
            read="get_usage",
            admit="try_call",
            key=lambda s: "py-" + s,
        )
        self.assertTrue(tracker.supports("admit"))
        self.assertFalse(tracker.supports("can-call"))
        tracker.record("sendgrid", 2)
        self.assertEqual(tracker.read("sendgrid")["remaining"], 98)
        tracker.admit("sendgrid", 1)
        other, out2 = self.recorded(real, read="usage_object")
        other.read("sendgrid")
        events = lines_of(out.getvalue()) + lines_of(out2.getvalue())
        self.assertEqual(
            [(e["key"], e["value"]) for e in events if e["type"] == "ok"],
            [
                ("py-sendgrid", 2),
                ("py-sendgrid", [2, 98]),
                ("py-sendgrid", {"admitted": True, "used": 3}),
                ("sendgrid", [3, 97]),
            ],
        )

    def test_threads_get_stable_small_process_ids_and_lines_never_mix(self) -> None:
        threads, per_thread = 16, 200
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            with HistoryRecorder(path) as recorder:
                tracker = RecordingTracker(
                    object(), recorder, record=lambda s, n: None, read=lambda s: 0
                )
                go = threading.Barrier(threads)

                def worker(index: int) -> None:
                    go.wait()
                    for i in range(per_thread):
                        if i % 2:
                            tracker.record("t", index + 1)  # the count names the thread
                        else:
                            tracker.read("t")

                ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                self.assertEqual(recorder.in_flight, 0)
            text = read_text(path)
        self.assertTrue(text.endswith("\n"))
        events = lines_of(text)
        self.assertEqual(len(events), 2 * threads * per_thread)
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times), "times must not decrease down the file")
        by_process: Dict[int, List[Dict[str, Any]]] = defaultdict(list)
        for e in events:
            by_process[e["process"]].append(e)
        self.assertEqual(sorted(by_process), list(range(threads)))
        for process, evs in by_process.items():
            kinds = [e["type"] for e in evs]
            self.assertEqual(kinds, ["invoke", "ok"] * per_thread, f"process {process}")
            counts = {e["value"] for e in evs if e["f"] == "record" and e["type"] == "invoke"}
            self.assertEqual(len(counts), 1, f"process {process} ran on two threads: {counts}")
        # Concurrency did happen: some invocation came while another was in flight.
        open_ops, overlapped = 0, False
        for e in events:
            open_ops += 1 if e["type"] == "invoke" else -1
            overlapped = overlapped or open_ops > 1
        self.assertTrue(overlapped)

    def test_a_new_thread_never_reuses_an_ended_threads_process(self) -> None:
        tracker, out = self.recorded(object(), read=lambda s: 0)
        for _ in range(3):
            t = threading.Thread(target=tracker.read, args=("t",))
            t.start()
            t.join()
        tracker.read("t")
        self.assertEqual([e["process"] for e in lines_of(out.getvalue())], [0, 0, 1, 1, 2, 2, 3, 3])

    def test_a_nested_operation_on_one_thread_is_refused(self) -> None:
        holder: List[RecordingTracker] = []

        def record(service: str, count: int) -> int:
            holder[0].read(service)  # an adapter calling back into the wrapper
            return count

        tracker, out = self.recorded(object(), record=record, read=lambda s: 0)
        holder.append(tracker)
        with self.assertRaises(RecorderError) as caught:
            tracker.record("tiingo", 1)
        self.assertIn("must not overlap", str(caught.exception))
        self.assertEqual([e["type"] for e in lines_of(out.getvalue())], ["invoke", "info"])

    def test_close_flushes_closes_and_refuses_more(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.jsonl")
            with HistoryRecorder(path, fsync=True) as recorder:
                tracker = RecordingTracker(LockedTracker(), recorder)
                tracker.record("tiingo", 1)
                # Each line reaches the file as it is written (a killed process keeps them).
                self.assertEqual(len(read_text(path).splitlines()), 2)
            self.assertTrue(recorder.closed)
            recorder.close()  # idempotent
            with self.assertRaises(RecorderError):
                tracker.record("tiingo", 1)
            self.assertEqual(len(read_text(path).splitlines()), 2)
        # A stream passed in is flushed, not closed.
        out = io.StringIO()
        HistoryRecorder(out).close()
        self.assertFalse(out.closed)
        with self.assertRaises(TypeError):
            HistoryRecorder(42)


if __name__ == "__main__":
    unittest.main()
