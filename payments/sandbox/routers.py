SANDBOX_DB = "sandbox"


class SandboxRouter:
    """The sandbox ledger lives in its own database; everything else in the default one."""

    def db_for_read(self, model, **hints):
        return SANDBOX_DB if model._meta.app_label == "sandbox" else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        if (obj1._meta.app_label == "sandbox") != (obj2._meta.app_label == "sandbox"):
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Per app, never per model: `migrate` and `showmigrations` ask it with the app label alone to
        # keep each app's migration records in its own database (payments/sandbox/migration_routing.py).
        return (app_label == "sandbox") == (db == SANDBOX_DB)
