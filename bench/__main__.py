"""``python -m bench [--profile quick|full|smoke] [--legs ...] [--out DIR] [--publish] [--compare JSON]``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import harness, report

from hybrid_platform.argparsing import OneLineParser


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="make bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(harness.PROFILES), default="quick")
    parser.add_argument("--legs", nargs="+", choices=harness.ALL_LEGS, help="run only these legs")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<profile>)")
    parser.add_argument("--report-only", action="store_true", help="rebuild REPORT.md from an existing results.json")
    parser.add_argument("--publish", action="store_true", help="also put the headline table into README.md")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="RESULTS_JSON",
        help="hold an earlier run's results.json against this one's: is each median within the other's rerun interval",
    )
    args = parser.parse_args(argv)
    profile = harness.PROFILES[args.profile]
    out_dir = args.out or harness.RESULTS_DIR / profile.name
    if args.report_only:
        results = harness.add_machine_drift(json.loads((out_dir / "results.json").read_text()))
    else:
        results = harness.run(profile, out_dir, legs=args.legs)
    path = report.write_report(results, out_dir)
    print(report.headline_markdown(results))
    if args.compare:
        if not args.compare.is_file():
            parser.error(f"--compare {args.compare}: no such results.json; give the path of an earlier run's")
        earlier = harness.add_machine_drift(json.loads(args.compare.read_text()))
        comparison = report.compare_markdown(earlier, results)
        (out_dir / "COMPARISON.md").write_text(f"# Two runs of the {profile.name} profile\n\n{comparison}\n")
        print(f"\n{comparison}")
    print(f"\nreport: {path}\nresults: {out_dir / 'results.json'}")
    if args.publish and not report.update_readme(harness.config.REPO_ROOT / "README.md", results):
        print("README.md has no bench markers; nothing published", file=sys.stderr)
    failed = [leg for leg, data in results.get("legs", {}).items() if "error" in data]
    if failed:
        print(f"legs failed: {', '.join(failed)} (see REPORT.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
