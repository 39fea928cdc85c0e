"""`manage.py migrate_all`: migrate every database alias (the router decides what goes where)."""

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply migrations to every configured database alias."

    def handle(self, *args: Any, **options: Any) -> None:
        for alias in settings.DATABASES:
            self.stdout.write(f"Migrating database '{alias}'...")
            call_command(
                "migrate", database=alias, interactive=False, verbosity=options["verbosity"]
            )
        self.stdout.write(self.style.SUCCESS("All databases migrated."))
        # The database checks (stored rows that today's rules would refuse) need the tables:
        # run them once everything is migrated. They warn; they never fail the command.
        self.check(databases=list(settings.DATABASES), display_num_errors=False)
