"""The accounts seeder: the admin from ADMIN_EMAIL/ADMIN_PASSWORD, demo users with `--demo`."""

from __future__ import annotations

from django.conf import settings

from apps.accounts import wiring
from apps.common.seeding import SeedFailure, SeedOptions
from core.domain.accounts.passwords import PasswordRejected
from core.domain.accounts.values import ADMIN_ROLES, DEFAULT_ROLES, Email
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.maintenance import ProvisionError, Provisioning

# Demo passwords are public by design (they are printed): demo data is for local use only.
DEMO_USERS = (
    Provisioning("alice@example.com", "alice-demo-pass-1", "Alice Demo", DEFAULT_ROLES),
    Provisioning("bob@example.com", "bob-demo-pass-2", "Bob Demo", DEFAULT_ROLES),
)


def seed_accounts(options: SeedOptions) -> list[str]:
    """Create what is missing; running it twice changes nothing."""
    wanted: list[tuple[Provisioning, str]] = []
    email, password = settings.ACCOUNTS_ADMIN_EMAIL, settings.ACCOUNTS_ADMIN_PASSWORD
    if email and password:
        wanted.append((Provisioning(email, password, "Administrator", ADMIN_ROLES, True), ""))
    if options.demo:
        wanted.extend((demo, f" (password {demo.password})") for demo in DEMO_USERS)
    if not wanted:
        return ["no admin: set ADMIN_EMAIL and ADMIN_PASSWORD to create one"]
    lines = []
    provision = wiring.provision_user()
    for command, note in wanted:
        match provision.execute(command):
            case Ok(True):
                lines.append(f"created {command.email}{note}")
            case Ok(False):
                lines.append(f"exists {command.email}")
            case Err(error):
                lines.append(SeedFailure(f"skipped: {_why(command, error)}"))
    return lines


def _why(command: Provisioning, error: ProvisionError | PasswordRejected) -> str:
    """What the operator reads about a user the seed could not create."""
    match error:
        case PasswordRejected(messages=messages):
            email = Email.parse(command.email)  # parsed: the address itself was accepted
            shown = email.value if email is not None else command.email
            return f"the password for {shown} is refused: {' '.join(messages)}"
        case ProvisionError.INVALID_EMAIL:
            return f"{command.email!r} is not an email address"
        case ProvisionError.INVALID_ROLE:
            return f"{list(command.roles)} are not roles: roles are short lowercase slugs"
