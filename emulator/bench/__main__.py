"""`python -m emulator.bench [GROUP...]`: run benchmark groups, print tables, save JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.bench import (
    DEFAULT_OUT_DIR,
    BenchOptions,
    load_groups,
    render,
    run_group,
    save_result,
)


def main(argv: list[str] | None = None) -> int:
    groups = load_groups()
    parser = argparse.ArgumentParser(
        prog="python -m emulator.bench",
        description="Run tplab benchmarks; each group saves <out>/<group>.json.",
    )
    parser.add_argument(
        "groups",
        nargs="*",
        metavar="GROUP",
        help=f"groups to run (default: all of {sorted(groups)})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output directory")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply sample counts and durations"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 if any target is missed"
    )
    args = parser.parse_args(argv)
    if args.list:
        for group in groups.values():
            print(f"{group.name}\t{group.description}")
        return 0
    names = args.groups or list(groups)
    unknown = [name for name in names if name not in groups]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(sorted(groups))}")
    if not 0 < args.scale <= 100:
        parser.error("--scale must be in (0, 100]")
    options = BenchOptions(scale=args.scale, seed=args.seed)
    all_met = True
    for name in names:
        result = run_group(groups[name], options)
        path = save_result(result, args.out)
        render([result])
        print(f"  saved {path}")
        all_met = all_met and result.targets_met
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
