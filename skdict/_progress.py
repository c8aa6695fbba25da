"""Progress reporting for long fits: a tqdm bar when tqdm is installed, log lines otherwise."""

from __future__ import annotations

import sys

from skdict._optional import optional_module


def _format(stats):
    return "  ".join(f"{name}={value:.4g}" for name, value in stats.items())


class _Bar:
    """What both progress reporters share: an optional tqdm bar, closed on leaving a ``with`` block."""

    _bar = None

    def close(self):
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class EpochProgress(_Bar):
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
            tqdm = optional_module("tqdm.auto")
            if tqdm is not None:
                self._bar = tqdm.tqdm(total=total, desc=description, unit="epoch", file=sys.stderr)

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


def _duration(seconds):
    """``1h02m`` / ``3m05s`` / ``12s``: a short duration for log lines."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class StepProgress(_Bar):
    """Progress of a minibatch training loop, updated every optimizer step.

    With tqdm installed, one bar counted in samples (its rate reads samples/s, and its
    ETA is shown when the horizon is known) whose postfix holds the statistics of the
    last logged window. Without tqdm, one line per logged window on stderr with the
    step, samples, samples/s, the ETA when the horizon is known, and the statistics.

    Parameters
    ----------
    total_samples : int or None
        Samples the run plans to read (the budget's horizon); ``None`` when unknown
        (a stream of unknown length, or no budget but early stopping).
    enabled : bool
        ``verbose > 0``; when ``False`` nothing is printed.
    description : str
        The estimator's name, shown before the bar or each line.
    clock : callable, default=time.perf_counter
        Seconds (for the rate and ETA of log lines; tests pass a fake clock).
    """

    def __init__(self, total_samples, *, enabled, description, clock=None):
        import time

        self.total_samples, self.enabled, self.description = total_samples, enabled, description
        self._clock = clock or time.perf_counter
        self._start = self._clock()
        self.samples = 0
        self._bar = None
        if enabled:
            tqdm = optional_module("tqdm.auto")
            if tqdm is not None:
                self._bar = tqdm.tqdm(
                    total=total_samples, desc=description, unit="sample", unit_scale=True, file=sys.stderr,
                    dynamic_ncols=True,
                )

    def step(self, n_samples):
        """One optimizer step on ``n_samples`` rows."""
        self.samples += n_samples
        if self._bar is not None:
            self._bar.update(n_samples)

    def log(self, step, stats):
        """The end of a logged window at optimizer step ``step`` with its ``stats`` (name to float)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(f"step={step}  {_format(stats)}", refresh=True)
            return
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.samples / elapsed
        line = f"[{self.description}] step {step}  samples {self.samples}"
        if self.total_samples:
            line += f"/{self.total_samples}"
        line += f"  {rate:.4g} samples/s"
        if self.total_samples and rate > 0:
            line += f"  ETA {_duration(max(0, self.total_samples - self.samples) / rate)}"
        print(f"{line}  {_format(stats)}", file=sys.stderr)

