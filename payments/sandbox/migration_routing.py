"""Migrations kept in the database that holds their app's tables.

Django applies and records every app's migrations in whichever database `migrate` is given, even where
the router keeps the app's tables out: `migrate --database sandbox` would mark the whole product as
migrated in the sandbox ledger's database, and `migrate` would mark the ledger as migrated in ours.
Here a database's plan, its records and what `showmigrations` lists hold only the apps the router
allows in it (the router decides per app: `payments.sandbox.routers`).
"""

import contextlib

from django.core.management.commands import migrate as django_migrate
from django.db import connections, router
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder


def lives_in(alias: str, app_label: str) -> bool:
    return bool(router.allow_migrate(alias, app_label))


class RoutedMigrationExecutor(MigrationExecutor):
    """Plans only the migrations of apps whose tables live in this executor's database."""

    def migration_plan(self, targets, clean_start=False):
        plan = super().migration_plan(targets, clean_start=clean_start)
        alias = self.connection.alias
        return [
            (migration, backwards) for migration, backwards in plan if lives_in(alias, migration.app_label)
        ]


@contextlib.contextmanager
def routed_migrate():
    """Django's `migrate` builds its executor from its module's name for the class: lend it ours."""
    original = django_migrate.MigrationExecutor
    django_migrate.MigrationExecutor = RoutedMigrationExecutor
    try:
        yield
    finally:
        django_migrate.MigrationExecutor = original


def _same_database(alias: str, other: str) -> bool:
    keys = ("ENGINE", "NAME", "HOST", "PORT")
    mine, theirs = connections[alias].settings_dict, connections[other].settings_dict
    return all(mine.get(key) == theirs.get(key) for key in keys)


def forget_foreign_records(alias: str) -> int:
    """Delete the records an older `migrate` left here of apps whose tables live elsewhere.

    Only records go, never a table (the router never let those tables in). Skipped when another alias
    names the same database, since the records there belong to both.
    """
    if any(_same_database(alias, other) for other in connections if other != alias):
        return 0
    recorder = MigrationRecorder(connections[alias])
    if not recorder.has_table():
        return 0
    foreign = {app for app, _name in recorder.applied_migrations() if not lives_in(alias, app)}
    if not foreign:
        return 0
    deleted, _ = recorder.migration_qs.filter(app__in=foreign).delete()
    return deleted
