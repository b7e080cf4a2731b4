"""The progress display of a running sweep, `SweepProgress`: rich bars on a terminal (cells overall with
an ETA, chains of the current program), one line per finished program otherwise, or nothing."""

from __future__ import annotations

import sys


class SweepProgress:
    """Progress of a sweep: rich bars (cells overall with ETA, chains of the current program) on a
    terminal, one line per program otherwise, nothing when quiet."""

    def __init__(self, total_cells: int, mode: str):
        self.mode, self.total, self.done = mode, total_cells, 0
        self.bar = None
        if mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.bar.start()
            self.cells_task = self.bar.add_task("cells", total=total_cells)
            self.chains_task = self.bar.add_task("chains", total=1)

    def start_program(self, label: str, chains: int) -> None:
        if self.bar is not None:
            self.bar.reset(self.chains_task, total=chains, description=f"chains {label}")

    def chains(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.chains_task, completed=done)

    def cell_done(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.cells_task, completed=self.done)

    def program_done(self, label: str, cells: int, seconds: float, compile_seconds: float) -> None:
        if self.mode == "lines":
            print(
                f"[{self.done}/{self.total} cells] {label}: {cells} cells in {seconds:.1f} s "
                f"(+{compile_seconds:.1f} s compile)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
