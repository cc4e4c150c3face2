import contextlib
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_console.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, DemoSeedError, bench_seed, demo_seed
from billing_console.demo.bench import DEFAULT_MIX
from payments.gateways.base import GatewayError


def _mix(value: str) -> dict[str, int]:
    try:
        weights = [int(part) for part in value.split(",")]
    except ValueError:
        weights = []
    if len(weights) != len(DEFAULT_MIX) or min(weights) < 0 or sum(weights) <= 0:
        raise CommandError(
            "--mix takes three whole percentages: primary pays, backup pays, all declined (e.g. 70,20,10)."
        )
    return dict(zip(DEFAULT_MIX, weights, strict=True))


@contextlib.contextmanager
def _quiet_gateway_log(quiet: bool):
    """The sandbox logs every token and charge at INFO; -v 2 shows them."""
    logger = logging.getLogger("payments.sandbox")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class Command(BaseCommand):
    help = (
        "Create demo accounts (sign in as demo, demo2, viewer; support for /admin/; password "
        f"'{DEMO_PASSWORD}') whose open invoices show every settlement outcome. Idempotent. "
        "With --accounts and --invoices-per-account, bulk-create benchmark data instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="run even with DEBUG off (it creates known passwords)"
        )
        parser.add_argument("--accounts", type=int, metavar="N", help="benchmark: N accounts")
        parser.add_argument(
            "--invoices-per-account",
            type=int,
            metavar="M",
            default=None,
            help="benchmark: M due invoices each",
        )
        parser.add_argument(
            "--mix",
            default=",".join(str(w) for w in DEFAULT_MIX.values()),
            help="benchmark: percent of accounts where the primary pays, a backup pays, all decline "
            "(default %(default)s)",
        )

    def handle(self, *args, force, accounts, invoices_per_account, mix, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                f"seed_demo creates users with the password '{DEMO_PASSWORD}', so it runs only with "
                "DEBUG on. Use --force to run it anyway."
            )
        bench = accounts is not None or invoices_per_account is not None
        try:
            with _quiet_gateway_log(options["verbosity"] < 2):
                if bench:
                    self._bench(accounts, invoices_per_account, _mix(mix))
                else:
                    self._demo()
        except (DemoSeedError, GatewayError) as exc:
            raise CommandError(str(exc)) from exc

    def _demo(self):
        report = demo_seed()
        if not report.changed:
            self.stdout.write("Demo data is already in place; nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data created: {report.users} users, {report.accounts} accounts, "
                f"{report.methods} payment methods, {report.invoices} invoices "
                f"({report.paid_history} paid in past months)."
            )
        )
        if report.support_group is None:
            self.stdout.write("No Support group exists yet; support is staff without the group.")
        self.stdout.write("Run `python manage.py settle_invoices` to see each outcome:")
        for spec in DEMO_ACCOUNTS:
            self.stdout.write(f"  {spec.name}, owner {spec.owner}: {spec.outcome}")

    def _bench(self, accounts, invoices_per_account, mix):
        if not accounts or accounts < 1 or invoices_per_account is None or invoices_per_account < 0:
            raise CommandError("Benchmark data needs --accounts N (at least 1) and --invoices-per-account M.")
        report = bench_seed(accounts=accounts, invoices_per_account=invoices_per_account, mix=mix)
        if not report.changed:
            self.stdout.write(
                f"Benchmark data is already in place ({accounts} accounts, "
                f"{report.invoices_present} invoices); nothing changed."
            )
            return
        total = sum(report.mix.values()) or 1
        shares = ", ".join(f"{name} {count} ({count / total:.0%})" for name, count in report.mix.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Benchmark data: {report.accounts} accounts, {report.methods} payment methods and "
                f"{report.invoices} invoices created ({report.invoices_present} already present) "
                f"in {report.seconds:.1f} s."
            )
        )
        self.stdout.write(f"Invoices by scenario: {shares}.")
        self.stdout.write(f"Owners sign in as bench000001 … bench{accounts:06d}, password '{DEMO_PASSWORD}'.")
