from django.core.management.commands import showmigrations
from django.db.migrations.loader import MigrationLoader

from payments.sandbox.migration_routing import lives_in


class Command(showmigrations.Command):
    help = "Shows the migrations of the apps the router keeps in the given database, and which are applied."

    def _routed_apps(self, connection, app_names):
        if app_names:
            return app_names
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        return sorted(app for app in loader.migrated_apps if lives_in(connection.alias, app)) or None

    def show_list(self, connection, app_names=None):
        return super().show_list(connection, self._routed_apps(connection, app_names))

    def show_plan(self, connection, app_names=None):
        return super().show_plan(connection, self._routed_apps(connection, app_names))
