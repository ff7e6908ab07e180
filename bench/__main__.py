"""`python -m bench`: the same options as `scitex-orochi bench`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import TARGETS, WORKLOADS


def split(value: str, allowed: tuple[str, ...]) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if items == ["all"]:
        return list(allowed)
    bad = [v for v in items if v not in allowed]
    if bad:
        raise SystemExit(f"unknown: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        epilog="examples:\n  python -m bench\n  python -m bench --quick --targets ours,ceiling\n"
        "  python -m bench --workloads fleet,latency --markdown /tmp/bench.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workloads", default="all", help=f"comma list of {','.join(WORKLOADS)}")
    parser.add_argument("--targets", default="all", help=f"comma list of {','.join(TARGETS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of our hub into this dir")
    args = parser.parse_args(argv)
    return execute(
        split(args.workloads, WORKLOADS),
        split(args.targets, TARGETS),
        args.quick,
        args.markdown,
        args.json,
        args.profile,
    )


def execute(
    workloads: list[str],
    targets: list[str],
    quick: bool,
    markdown_path: Path | None,
    as_json: bool,
    profile_dir: Path | None,
) -> int:
    from . import report, runner

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = runner.run(workloads, targets, quick=quick, log=log, profile_dir=profile_dir)
    results["command"] = " ".join(sys.argv)
    md = report.markdown(results)
    if markdown_path is not None:
        markdown_path.write_text(md + "\n")
        log(f"tables written to {markdown_path}")
    print(report.to_json(results) if as_json else md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
