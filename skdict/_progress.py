"""Progress reporting for long fits: a tqdm bar when tqdm is installed, log lines otherwise."""

from __future__ import annotations

import sys


def _format(stats):
    return "  ".join(f"{name}={value:.4g}" for name, value in stats.items())


class EpochProgress:
    """Reports one line (or bar update) per epoch with the epoch's statistics.

    Parameters
    ----------
    total : int
        Number of epochs planned.
    enabled : bool
        ``verbose > 0``; when ``False`` nothing is printed.
    description : str
        Shown before the bar or each line (the estimator's name).
    """

    def __init__(self, total, *, enabled, description):
        self.total, self.enabled, self.description = total, enabled, description
        self._bar = None
        self._epoch = 0
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=description, unit="epoch", file=sys.stderr)

    def update(self, stats):
        """Record the end of an epoch with ``stats`` (a dict of name to float)."""
        self._epoch += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(_format(stats), refresh=False)
            self._bar.update(1)
        else:
            print(f"[{self.description}] epoch {self._epoch}/{self.total}  {_format(stats)}", file=sys.stderr)

    def close(self):
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
