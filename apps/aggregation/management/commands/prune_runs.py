"""`manage.py prune_runs --older-than DAYS`: delete composite runs older than DAYS days."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.aggregation import wiring
from core.domain.aggregation.runs import MAX_RETENTION_DAYS
from core.domain.shared.result import Err, Ok


class Command(BaseCommand):
    help = "Delete the history of composite runs that started more than DAYS days ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        match wiring.prune_runs().execute(older_than_days=days):
            case Ok(deleted):
                self.stdout.write(f"Deleted {deleted} runs older than {days} days.")
            case Err(_):
                raise CommandError(f"--older-than must be 0 to {MAX_RETENTION_DAYS} days.")
