"""`manage.py seed [--demo]`: idempotent seeding of every context through its registered seeder."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common.seeding import SeedOptions, failures, seeders


class Command(BaseCommand):
    help = "Seed every context (idempotent); the admin comes only from ADMIN_EMAIL/ADMIN_PASSWORD."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="Also add demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        seed_options = SeedOptions(demo=options["demo"])
        failed = 0
        for name, seeder in seeders():
            lines = seeder(seed_options)
            for line in lines:
                self.stdout.write(f"[{name}] {line}")
            failed += len(failures(lines))
        if failed:
            raise CommandError(f"Seeding incomplete: {failed} item(s) could not be created.")
        self.stdout.write(self.style.SUCCESS("Seeding done."))
