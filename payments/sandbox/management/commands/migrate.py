from django.core.management.commands import migrate

from payments.sandbox.migration_routing import forget_foreign_records, routed_migrate


class Command(migrate.Command):
    help = (
        "Updates a database's schema to the migrations of the apps the router keeps in it "
        "(the sandbox ledger in the sandbox database, everything else in the default one)."
    )

    def handle(self, *args, **options):
        with routed_migrate():
            super().handle(*args, **options)
        if options["plan"] or options["check_unapplied"] or options["prune"]:
            return
        forgotten = forget_foreign_records(options["database"])
        if forgotten and options["verbosity"] >= 1:
            self.stdout.write(
                f"  Forgot {forgotten} migration record(s) of apps whose tables live in another database."
            )
