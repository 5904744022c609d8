"""The ``bayeskit`` console command: ``bayeskit doctor [--verbose|--json]``."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bayeskit", description="bayeskit command-line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="report versions, JAX devices, float64 and widget extensions")
    doc.add_argument("--verbose", "-v", action="store_true", help="detailed report")
    doc.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .doctor import doctor, report

        if args.json:
            print(json.dumps(report(), indent=2))
        else:
            doctor(verbose=args.verbose)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
