"""`manage.py changepassword`: Django's command, then the user's sessions end and the reset
links mailed before stop working (`SealPasswordSet`), as after a password set in the admin."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword

from apps.accounts import wiring
from core.domain.accounts.values import Email


class Command(changepassword.Command):
    help = (
        "Change a user's password; every session of the user ends and the reset links mailed "
        "before stop working."
    )

    def handle(self, *args: Any, **options: Any) -> str:
        # The address is looked up as sign-in looks it up: ` ALICE@Example.COM` is alice's.
        given = options["username"] or changepassword.getpass.getuser()
        email = Email.lookup(given)
        username = options["username"] = email.value if email is not None else given
        done: str = super().handle(*args, **options)  # raises CommandError unless it changed it
        user_model = get_user_model()
        user_id = (
            user_model._default_manager.using(options["database"])
            .values_list("pk", flat=True)
            .get(**{user_model.USERNAME_FIELD: username})
        )
        wiring.seal_password_set().execute(str(user_id)).unwrap()
        return f"{done}; every session of the user ended."
