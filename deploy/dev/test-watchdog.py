#!/usr/bin/env python3
"""Runs the test command and turns a hang into a diagnosed failure.

CI has one wall-clock limit for everything; a test whose await never resumes would spend all of
it in silence. This runs `swift test` (or any command) in a process group of its own, copies its
output to stdout and to --log, and follows the tests it reports (Swift Testing's "started" /
"passed after" / "failed after" lines, XCTest's "Test Case" lines). When no test has finished for
--stall-s seconds, or the whole run passes --limit-s, it prints the tests and suites that started
and never finished, every thread's stack of the test process (gdb, when installed; the full dump
goes next to the log), and the unfinished tests once more at the end (CI shows the tail; the
report is also kept in FILE.watchdog), then stops the group and exits 124.

usage: test-watchdog.py --log FILE [--stall-s 600] [--limit-s 3600] -- command args…
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

STARTED = re.compile(r"(Test|Suite) (.+?) started\.")
FINISHED = re.compile(r"(Test|Suite) (.+?) (?:with \d+ test cases? )?(passed|failed) after")
XCTEST = re.compile(r"Test Case '(.+?)' (started|passed|failed)")
# Stack frames that say nothing about where a test is stuck: idle event loops and pools.
IDLE = ("epoll_wait", "pthread_cond_wait", "pthread_cond_timedwait", "__futex_abstimed_wait", "nanosleep", "poll (")


class Progress:
    def __init__(self):
        self.lock = threading.Lock()
        self.open = {"Test": collections.Counter(), "Suite": collections.Counter()}
        self.last_finish = time.monotonic()
        self.finished = 0

    def see(self, line):
        with self.lock:
            match = STARTED.search(line)
            # A parameterized test's cases say when they start, never when they end: the test does.
            if match and not match.group(2).startswith("case ") and match.group(2) != "run":
                self.open[match.group(1)][match.group(2)] += 1
                return
            match = FINISHED.search(line)
            if match:
                kind, name = match.group(1), match.group(2)
                if self.open[kind][name] > 0:
                    self.open[kind][name] -= 1
                if kind == "Test":
                    self.last_finish = time.monotonic()
                    self.finished += 1
                return
            match = XCTEST.search(line)
            if match:
                if match.group(2) == "started":
                    self.open["Test"][match.group(1)] += 1
                else:
                    self.open["Test"][match.group(1)] = max(0, self.open["Test"][match.group(1)] - 1)
                    self.last_finish = time.monotonic()
                    self.finished += 1

    def unfinished(self):
        with self.lock:
            return {kind: sorted(name for name, count in counter.items() for _ in range(count)) for kind, counter in self.open.items()}


def descendants(root):
    """Every process below `root` (swift test starts the test bundle in a process group of its own)."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children[parent].append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_processes(root):
    """The processes below `root` that run the test bundle (not swift-test itself)."""
    pids = []
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "PackageTests" in command or ".xctest" in command:
            pids.append(pid)
    return pids


def backtraces(pid):
    if not shutil.which("gdb"):
        return "gdb is not installed: no stacks (apt-get install gdb to have them)\n"
    try:
        result = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-nx", "-ex", "set pagination off", "-ex", "thread apply all bt 40"],
            capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return "gdb took over 180 s\n"
    text = result.stdout
    if shutil.which("swift"):
        try:
            text = subprocess.run(["swift", "demangle", "--simplified"], input=text, capture_output=True, text=True, timeout=120).stdout or text
        except subprocess.TimeoutExpired:
            pass
    return text


def condensed(dump, frames=14):
    """Each thread's first frames, leaving out threads that only wait in an idle loop."""
    out = []
    for block in re.split(r"\n(?=Thread \d+ )", dump):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("Thread "):
            continue
        stack = [line for line in lines[1:] if line.startswith("#")]
        top = " ".join(stack[:3])
        if any(marker in top for marker in IDLE) and not any(
                word in block for word in ("rd_kafka_consumer_close", "PQ", "redis", "Conduit", "Gateway", "Orchestrator", "Embedder", "Retriever")):
            continue
        out.append(lines[0])
        out.extend("  " + line[:220] for line in stack[:frames])
    return "\n".join(out) + "\n"


def report(progress, why, log, group):
    unfinished = progress.unfinished()
    record = open(f"{log}.watchdog", "w")

    def say(text):
        sys.stdout.write(text)
        sys.stdout.flush()
        record.write(text)
        record.flush()
    say(f"\n=== test watchdog: {why} ===\n")
    say(f"tests finished so far: {progress.finished}\n")
    for kind in ("Suite", "Test"):
        say(f"{kind.lower()}s started and not finished ({len(unfinished[kind])}):\n")
        for name in unfinished[kind]:
            say(f"  {name}\n")
    for pid in test_processes(group):
        dump = backtraces(pid)
        path = f"{log}.backtraces-{pid}.txt"
        with open(path, "w") as handle:
            handle.write(dump)
        say(f"--- stacks of test process {pid} (threads waiting idle left out; all of them in {path}) ---\n")
        say(condensed(dump))
    say(f"=== test watchdog: {why}; unfinished suites: {', '.join(unfinished['Suite']) or 'none'}; "
        f"unfinished tests: {', '.join(unfinished['Test']) or 'none'} ===\n")
    record.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--stall-s", type=float, default=600)
    parser.add_argument("--limit-s", type=float, default=3600)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    progress = Progress()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    group = child.pid
    fired = threading.Event()
    started = time.monotonic()

    def watch():
        while child.poll() is None:
            time.sleep(5)
            now = time.monotonic()
            why = None
            if now - progress.last_finish > options.stall_s:
                why = f"no test finished for {int(now - progress.last_finish)} s (CONDUIT_TEST_STALL_S={int(options.stall_s)})"
            elif now - started > options.limit_s:
                why = f"the tests ran past {int(options.limit_s)} s (CONDUIT_TEST_LIMIT_S)"
            if why and child.poll() is None:
                fired.set()
                report(progress, why, options.log, group)
                # The test bundle and the servers its tests started may sit in groups of their own.
                below = descendants(group)
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    for pid in below:
                        try:
                            os.kill(pid, sig)
                        except ProcessLookupError:
                            pass
                    try:
                        os.killpg(group, sig)
                    except ProcessLookupError:
                        pass
                    time.sleep(5)
                return

    threading.Thread(target=watch, daemon=True).start()
    with open(options.log, "wb") as log:
        for raw in child.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
            log.write(raw)
            progress.see(raw.decode(errors="replace"))
    status = child.wait()
    if fired.is_set():
        # The report is printed by the watcher; wait for it to end before exiting.
        while threading.active_count() > 1:
            time.sleep(1)
        return 124
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
