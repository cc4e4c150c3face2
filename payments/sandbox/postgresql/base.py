"""PostgreSQL for the sandbox ledger, creating its database on first connection when it is missing.

SQLite creates the ledger's file the first time it is opened; this does the same on PostgreSQL, on the
default database's server, and gives the new database the ledger's tables (they are the stand-in
processor's own books, nothing of ours), so a fresh DATABASE_URL needs no second manual step before
`migrate` or `seed_demo`. Where that cannot be done (the role may not create databases, or the ledger
is on another server), connecting stops with a one-line message that gives the command creating it.
"""

import logging
import shlex

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)

DUPLICATE_DATABASE = "42P04"


class DatabaseWrapper(base.DatabaseWrapper):
    created_database = False

    def connect(self):
        super().connect()
        if self.created_database:
            self.created_database = False
            call_command("migrate", database=self.alias, interactive=False, verbosity=0)
            logger.warning(
                "Created the sandbox ledger's database %s and its tables.", self.settings_dict["NAME"]
            )

    def get_new_connection(self, conn_params):
        name = self.settings_dict["NAME"]
        try:
            return super().get_new_connection(conn_params)
        except self.Database.OperationalError as exc:
            # Only the database this alias names, not the server-level one Django uses to create test
            # databases; the server says which database it could not find.
            if not name or conn_params.get("dbname") != name or f'"{name}" does not exist' not in str(exc):
                raise
        self._create_missing_database(name)
        return super().get_new_connection(conn_params)

    def _create_missing_database(self, name: str) -> None:
        default = connections["default"].settings_dict
        same_server = default["ENGINE"].endswith("postgresql") and all(
            default.get(key) == self.settings_dict.get(key) for key in ("HOST", "PORT", "USER")
        )
        if not same_server:
            why = "is on another server than DATABASE_URL's, so it is not created automatically"
            raise CommandError(self._missing_message(name, why))
        server = connections.create_connection("default")  # a connection of its own, in autocommit
        try:
            with server.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {self.ops.quote_name(name)}")
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == DUPLICATE_DATABASE:
                return  # another process created it meanwhile
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(self._missing_message(name, f"could not be created ({reason})")) from None
        finally:
            server.close()
        self.created_database = True

    def _missing_message(self, name: str, why: str) -> str:
        command = ["createdb"]
        for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
            if self.settings_dict.get(key):
                command += [flag, str(self.settings_dict[key])]
        command.append(name)
        how = shlex.join(command)
        return f'The sandbox database "{name}" does not exist and {why}. Create it with: {how}'
