"""``python -m validation [--fast] [--out DIR] [--case NAME ...]``"""

import argparse
import sys

from . import CASES, run_validation

p = argparse.ArgumentParser(prog="python -m validation", description="Run esmsim's validation cases.")
p.add_argument("--fast", action="store_true", help="only the fast subset (as in CI)")
p.add_argument("--out", default="esmsim-validation", help="report folder")
p.add_argument("--case", action="append", choices=list(CASES), help="run only this case (repeatable)")
args = p.parse_args()
sys.exit(run_validation(args.out, fast=args.fast, cases=args.case))
