"""A progress bar with a count, a rate and an ETA for the long CLI steps (tqdm, on stderr)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """Yield `items`, drawing a bar with count, rate and ETA on stderr (tqdm comes with huggingface-hub)."""
    from tqdm import tqdm

    # mininterval keeps logs written to a file short when the bar is not on a terminal.
    yield from tqdm(items, total=total, desc=desc, mininterval=2.0, dynamic_ncols=True)


def progress_bar(total: int, desc: str = ""):
    """A bar to advance by hand (`.update(n)`, `.close()`), drawn like `progress`."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, mininterval=2.0, dynamic_ncols=True)
