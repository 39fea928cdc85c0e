"""`manage.py flush_expired_tokens`: delete ended refresh families and spent one-time tokens."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.accounts import wiring


class Command(BaseCommand):
    help = "Delete expired or revoked sessions and used or expired email tokens."

    def handle(self, *args: Any, **options: Any) -> None:
        flushed = wiring.flush_expired_tokens().execute().unwrap()
        self.stdout.write(
            f"Deleted {flushed.sessions} sessions and {flushed.one_time_tokens} email tokens."
        )
