"""Store every email host in ASCII A-labels, as `Email.parse` now does.

Rows registered with an internationalised host (`a@bücher.de`) are rewritten to the spelling
`Email.lookup` looks them up by (`a@xn--bcher-kva.de`), so they can still sign in. A row whose
A-label spelling already belongs to another account (the duplicate this rule prevents from now
on) is left as it is: merging two accounts is a decision for a person, not a migration.
"""

from django.db import migrations

from core.domain.accounts.values import Email


def email_hosts_to_a_labels(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    db = schema_editor.connection.alias
    rows = User.objects.using(db).filter(email__regex=r"@.*[^ -~]")  # a non-ASCII host
    for row in rows.only("id", "email"):
        canonical = Email.lookup(row.email)
        if canonical is None or canonical.value == row.email:
            continue
        if User.objects.using(db).filter(email=canonical.value).exists():
            continue
        User.objects.using(db).filter(pk=row.pk).update(email=canonical.value)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sessions_tokens_lockout"),
    ]

    operations = [
        migrations.RunPython(email_hosts_to_a_labels, migrations.RunPython.noop, elidable=True),
    ]
