"""Keras's per-epoch progress line: ``45/45 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 0.1234``.

On a terminal the bar is drawn live (with tqdm); elsewhere (logs, pipes,
notebooks' captured output) only the finished line is printed, as Keras does.
"""
from __future__ import annotations

import sys
import time


def format_logs(logs: dict) -> str:
    return "".join(f" - {key}: {value:.4f}" for key, value in sorted(logs.items(),
                                                                      key=lambda kv: (kv[0].startswith("val_"), kv[0])))


class ProgressBar:
    def __init__(self, steps: int, verbose: int, out=None) -> None:
        self.steps, self.verbose, self.out = steps, verbose, out or sys.stdout
        self.started = time.perf_counter()
        self.live = None
        if verbose == 1 and getattr(self.out, "isatty", lambda: False)():
            from tqdm import tqdm

            self.live = tqdm(total=steps, file=self.out, ascii=" ━", ncols=100, leave=False,
                             bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed} {postfix}")

    def update(self, step: int, logs: dict) -> None:
        if self.live is not None:
            self.live.update(1)
            self.live.set_postfix_str(format_logs(logs).lstrip(" -"), refresh=False)

    def close(self, logs: dict) -> None:
        if self.live is not None:
            self.live.close()
        if self.verbose == 0:
            return
        seconds = time.perf_counter() - self.started
        per_step = seconds / max(self.steps, 1)
        per_step_text = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
        if self.verbose == 1:
            line = f"{self.steps}/{self.steps} {'━' * 20} {seconds:.0f}s {per_step_text}"
        else:
            line = f"{self.steps}/{self.steps} - {seconds:.0f}s - {per_step_text}"
        print(line + format_logs(logs), file=self.out, flush=True)
