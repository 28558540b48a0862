"""What scrubbing a very long string costs: linear in its length, for any content.

Run: ``python benchmarks/scrub_throughput.py [--mb 10]``. For each kind of text
(ordinary ones, and ones built against regex engines: long runs of the
characters a pattern starts with, digit runs, '@' runs, dotted runs before a
'://'), prints the CPU seconds ``errorkit.scrub`` takes on a 1 MB and a
``--mb`` MB string, and two ratios measured in the same run:

- ``big/1MB``: how the time grows with the length (linear: close to the size
  ratio; quadratic: that ratio squared);
- ``vs str.lower``: against one C-speed pass over the same text (``lower()``).

The target (errorkit issue 14): a 10 MB string in well under a second.
Texts dense in personal data (a phone every 80 characters) pay per masked
value, and are printed apart.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from errorkit import scrub

MB = 1_000_000
WORDS = [
    "the",
    "salon",
    "booking",
    "client",
    "staff",
    "schedule",
    "service",
    "failed",
    "retry",
    "pool",
    "timeout",
]


def prose(size: int, rng: random.Random) -> str:
    """Log-like lines, a phone number or an address in about one line in a hundred."""
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choices(WORDS, k=12))
        if rng.random() < 0.01:
            line += " call +7 968 648 44 88"
        if rng.random() < 0.01:
            line += " mail anna.petrova@example.com"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


def json_records(size: int, rng: random.Random) -> str:
    """A JSON payload of client rows, each with a phone and an e-mail address."""
    rows, total = [], 0
    while total < size:
        row = json.dumps(
            {
                "id": rng.randint(1, 10**6),
                "name": "Anna",
                "phone": "79686484488",
                "email": "a@b.com",
                "created_at": "2026-01-01T10:00:00Z",
                "price": 1200.5,
            }
        )
        rows.append(row)
        total += len(row) + 1
    return ("[" + ",".join(rows) + "]")[:size]


def repeat(piece: str) -> Callable[[int, random.Random], str]:
    return lambda size, rng: (piece * (size // len(piece) + 1))[:size]


ORDINARY: dict[str, Callable[[int, random.Random], str]] = {
    "one letter repeated ('x' * n)": repeat("x"),
    "log-like prose, sparse PII": prose,
    "random printable ASCII": lambda size, rng: "".join(rng.choices(string.printable, k=size)),
    "base64 blob": lambda size, rng: base64.b64encode(rng.randbytes(size * 3 // 4)).decode()[:size],
}
HOSTILE: dict[str, Callable[[int, random.Random], str]] = {
    "digits only": repeat("1"),
    "'@' only": repeat("@"),
    "'a.' runs, then '://'": lambda size, rng: repeat("a.")(size - 3, rng) + "://",
    "'a=' runs, then '@x.com'": lambda size, rng: repeat("a=")(size - 6, rng) + "@x.com",
    "URL with 500k path segments": lambda size, rng: "https://x.com" + repeat("/a")(size - 13, rng),
    "'s', 'x', 'A' runs (token prefix letters)": repeat("sssssxxxxxAAAAA"),
}
DENSE: dict[str, Callable[[int, random.Random], str]] = {
    "JSON rows, a phone and an e-mail in each": json_records,
    "a phone, an address, a password, a card per 80 chars": repeat(
        "call +7 968 648 44 88 or anna@x.com password=secret card 4111 1111 1111 1111 "
    ),
}


def cpu_seconds(fn: Callable[[], object]) -> float:
    started = time.thread_time()
    fn()
    return time.thread_time() - started


def measure(name: str, make: Callable[[int, random.Random], str], big_mb: int) -> None:
    rng = random.Random(14)
    small, big = make(MB, rng), make(big_mb * MB, rng)
    t_small = min(cpu_seconds(lambda: scrub(small)) for _ in range(3))
    t_big = cpu_seconds(lambda: scrub(big))
    t_lower = min(cpu_seconds(big.lower) for _ in range(3))
    print(
        f"  {name:<48} 1 MB {t_small:6.3f} s   {big_mb} MB {t_big:6.3f} s"
        f"   big/1MB {t_big / t_small:5.1f}x   vs str.lower {t_big / t_lower:6.0f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=10, help="size of the big string (default 10)")
    args = parser.parse_args()
    print(f"scrub() CPU time (thread), 1 MB vs {args.mb} MB; target: {args.mb} MB well under 1 s")
    for title, kinds in (
        ("ordinary text", ORDINARY),
        ("text built against the patterns", HOSTILE),
        ("text dense in personal data (pays per masked value)", DENSE),
    ):
        print(title + ":")
        for name, make in kinds.items():
            measure(name, make, args.mb)


if __name__ == "__main__":
    main()
