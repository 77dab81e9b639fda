"""Where a worker's time goes: py-spy samples of the live process, summed by cause.

:class:`Profiler` runs ``py-spy record`` (a sampling profiler: the worker runs
unmodified, at full speed) on a process for as long as a benchmark phase lasts and
:func:`categorise` sorts the samples (active ones only: py-spy leaves idle threads
out) by the first cause found in each stack, so the table reads "share of the
worker's busy time". py-spy needs ptrace (root, or ``kernel.yama.ptrace_scope=0``);
without it the profile is skipped and said so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import report

#: (cause, any of these function names in the stack), first match wins.
CAUSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop waiting for I/O (epoll)", ("EpollSelector.select ",)),
    ("workflow sandbox: compiling workflow modules from source", (".source_to_code ",)),
    (
        "workflow sandbox: re-importing workflow modules for a new run",
        (".create_instance ", "._create_workflow_instance "),
    ),
    ("workflow tasks: running and replaying workflow code", ("._handle_activation ",)),
    ("activities: provider HTTP calls", ("_ActivityWorker.",)),
    (
        "payloads: encryption codec and conversion",
        (
            "PayloadVisitor.",
            "_Visitor.visit_payload",
            "EncryptionCodec.",
            "_CommandAwareDataConverter.",
        ),
    ),
)
OTHER = "other (event loop, SDK core bridge, thread hand-offs, ...)"


@dataclass(frozen=True)
class Profile:
    samples: int
    shares: dict[str, float]
    raw: Path


def categorise(raw: Path) -> Profile:
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        cause = next((c for c, marks in CAUSES if any(m in stack for m in marks)), OTHER)
        counts[cause] += int(number)
        total += int(number)
    return Profile(total, {c: n / total for c, n in counts.items()} if total else {}, raw)


@dataclass
class Profiler:
    process: subprocess.Popen[bytes] | None
    raw: Path

    @classmethod
    def attach(cls, pid: int, raw: Path, rate: int = 50) -> Profiler:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        raw.parent.mkdir(parents=True, exist_ok=True)
        argv = [py_spy, "record", "-p", str(pid), "-r", str(rate), "-f", "raw"]
        argv += ["--nonblocking", "-o", str(raw)]
        try:
            process = subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as error:
            print(f"profile skipped: cannot run py-spy ({error})", file=sys.stderr)
            process = None
        return cls(process, raw)

    def stop(self) -> Profile | None:
        """Stop recording (py-spy writes its file on SIGINT) and sum the samples."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.raw.exists():
            print("profile skipped: py-spy wrote nothing (ptrace allowed?)", file=sys.stderr)
            return None
        return categorise(self.raw)


def profile_table(profiles: list[tuple[str, Profile]]) -> str:
    causes = [cause for cause, _ in CAUSES] + [OTHER]
    rows = [
        [cause, *(f"{100 * profile.shares.get(cause, 0.0):.0f} %" for _, profile in profiles)]
        for cause in causes
    ]
    rows.append(["samples (50/s of busy time)", *(str(p.samples) for _, p in profiles)])
    return report.markdown_table(["share of busy samples", *(n for n, _ in profiles)], rows)
