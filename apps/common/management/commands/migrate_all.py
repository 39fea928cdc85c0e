"""`manage.py migrate_all`: migrate every database alias (the router decides what goes where)."""

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connections


class Command(BaseCommand):
    help = "Apply migrations to every configured database alias."

    def handle(self, *args: Any, **options: Any) -> None:
        # Every alias must answer before any is migrated: a missing database (the URL names one
        # nobody created) stops the start with the alias and its variable, not a traceback
        # after the others were migrated.
        unreachable = [problem for alias in settings.DATABASES if (problem := _unreachable(alias))]
        if unreachable:
            raise CommandError(
                "Cannot reach every database, so none was migrated:\n"
                + "\n".join(unreachable)
                + "\nCreate the missing databases (e.g. `createdb -h HOST -U USER NAME`)"
                " or correct their URLs."
            )
        for alias in settings.DATABASES:
            self.stdout.write(f"Migrating database '{alias}'...")
            call_command(
                "migrate", database=alias, interactive=False, verbosity=options["verbosity"]
            )
        self.stdout.write(self.style.SUCCESS("All databases migrated."))
        # The database checks (stored rows that today's rules would refuse) need the tables:
        # run them once everything is migrated. They warn; they never fail the command.
        self.check(databases=list(settings.DATABASES), display_num_errors=False)


def _unreachable(alias: str) -> str | None:
    """Why `alias` cannot be connected to, naming the variable its URL comes from; else None."""
    try:
        connections[alias].ensure_connection()
    except OperationalError as error:
        variable = settings.DATABASE_URL_VARIABLES.get(alias, "its URL")
        return f"  database '{alias}' ({variable}): {error}".rstrip()
    return None
