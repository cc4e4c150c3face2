"""Demo and benchmark data for ``manage.py seed_demo``.

- ``showcase.demo_seed()``: the hand-made accounts of ``cast.py``, whose charge orders make every
  settlement outcome appear when ``settle_invoices`` runs (README, "Demo accounts").
- ``bench.bench_seed(accounts=, invoices_per_account=)``: benchmark-sized data, bulk-inserted.

Both are idempotent: what exists already is left alone.
"""

from .bench import BenchReport, bench_seed
from .cast import DEMO_ACCOUNTS, DEMO_PASSWORD
from .showcase import DemoReport, DemoSeedError, demo_seed

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_PASSWORD",
    "BenchReport",
    "DemoReport",
    "DemoSeedError",
    "bench_seed",
    "demo_seed",
]
