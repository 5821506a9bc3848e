"""``clipfunnel serve …`` under cProfile, switched on and off by signals.

``python -m bench.serve_profiled attribution --port N`` runs exactly what
``python -m services.cli serve attribution --port N`` runs; SIGUSR1 starts profiling the
event-loop thread (and counting SQL statements) and SIGUSR2 stops it and writes
``$BENCH_PROFILE_DIR/phase-<k>.prof`` (and ``phase-<k>.sql.json``), so the
benchmark can profile one phase (ingest, orders) of a running service. cProfile attributes CPU
to functions exactly (py-spy cannot see through SQLAlchemy's greenlets: it samples suspended
database waits as busy), at the price of some overhead while it is on.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine


class _Switch:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.profiler: cProfile.Profile | None = None
        self.phase = 0
        # SQL statements sent while profiling: (normalised text, executemany) → count.
        self.statements: Counter[tuple[str, bool]] = Counter()

    def count_statement(
        self,
        _conn: object,
        _cursor: object,
        statement: str,
        _parameters: object,
        _context: object,
        executemany: bool,
    ) -> None:
        if self.profiler is not None:
            self.statements[" ".join(statement.split())[:200], executemany] += 1

    def on(self, _signum: int, _frame: FrameType | None) -> None:
        if self.profiler is None:
            self.statements.clear()
            # Thread CPU time, not wall time: waits for the GIL (the aiosqlite thread), for the
            # database and for a busy machine's scheduler are not charged to the function.
            self.profiler = cProfile.Profile(time.thread_time)
            self.profiler.enable()

    def off(self, _signum: int, _frame: FrameType | None) -> None:
        profiler, self.profiler = self.profiler, None
        if profiler is None:
            return
        profiler.disable()
        self.phase += 1
        target = self.directory / f"phase-{self.phase}.prof"
        statements = [
            {"statement": text, "executemany": many, "count": n}
            for (text, many), n in self.statements.most_common()
        ]
        target.with_suffix(".sql.json").write_bytes(orjson.dumps(statements))
        profiler.dump_stats(str(target.with_suffix(".tmp")))
        os.replace(target.with_suffix(".tmp"), target)


def main() -> None:
    directory = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
    directory.mkdir(parents=True, exist_ok=True)
    switch = _Switch(directory)
    signal.signal(signal.SIGUSR1, switch.on)
    signal.signal(signal.SIGUSR2, switch.off)
    # Every engine (the class-level hook reaches the ones the app creates later).
    event.listen(Engine, "before_cursor_execute", switch.count_statement)
    from services.cli import main as cli_main

    sys.argv = ["clipfunnel", "serve", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
