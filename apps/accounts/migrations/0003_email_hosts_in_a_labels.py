"""Store every email host in ASCII A-labels, as `Email.parse` now does.

Rows registered with an internationalised host (`a@bücher.de`) are rewritten to the spelling
`Email.lookup` looks them up by (`a@xn--bcher-kva.de`), so they can still sign in. A row whose
A-label spelling already belongs to another account (the duplicate this rule prevents from now
on) is left as it is, and printed: merging two accounts is a decision for a person, not a
migration. Reversing it changes nothing back: the A-label spelling is one users can still type.
"""

from django.db import migrations


def _a_label_spelling(email: str) -> str | None:
    """`email` with its host in ASCII A-labels (frozen here: later changes to the domain's
    `Email` must not change what this migration did), or None when the host has no such form."""
    local, at, host = email.rpartition("@")
    if not at or host.isascii():
        return None
    try:
        return f"{local}@{host.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def email_hosts_to_a_labels(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    db = schema_editor.connection.alias
    rows = User.objects.using(db).filter(email__regex=r"@.*[^ -~]")  # a non-ASCII host
    for row in rows.only("id", "email"):
        canonical = _a_label_spelling(row.email)
        if canonical is None:
            continue
        if User.objects.using(db).filter(email=canonical).exists():
            # Two accounts for one mailbox: say which, for a person to merge them.
            print(f"  accounts.0003: user {row.pk} kept as {row.email!r}: {canonical!r} is taken")
            continue
        User.objects.using(db).filter(pk=row.pk).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sessions_tokens_lockout"),
    ]

    operations = [
        migrations.RunPython(email_hosts_to_a_labels, migrations.RunPython.noop, elidable=True),
    ]
