# Secrets at rest: agents' webhook secrets, reviewer groups' Slack webhook URLs and the outbox rows
# that copy them become EncryptedTextField columns, and the values already stored are encrypted.
# Reversible: going back writes the plaintext again (with the keys of the environment it runs in).

import django.core.validators
from django.db import migrations

import approvals.models
import core.fields

ENCRYPTED = [
    ("Agent", "webhook_secret"),
    ("ReviewerGroupNotifications", "slack_webhook_url"),
    ("QueueNotification", "target"),
]


def encrypt_stored_values(apps, schema_editor):
    for model_name, field_name in ENCRYPTED:
        report = core.fields.column_reencrypt(apps.get_model("approvals", model_name), field_name)
        if report.failed:
            raise RuntimeError(
                f"{report.column}: rows {report.failed} cannot be decrypted with COUNTERSIGN_ENCRYPTION_KEYS"
            )


def decrypt_stored_values(apps, schema_editor):
    for model_name, field_name in ENCRYPTED:
        core.fields.column_decrypt(apps.get_model("approvals", model_name), field_name)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0013_agent_limits"),
    ]

    operations = [
        migrations.AlterField(
            model_name="agent",
            name="webhook_secret",
            field=core.fields.EncryptedTextField(default=approvals.models.generate_webhook_secret, editable=False),
        ),
        migrations.AlterField(
            model_name="queuenotification",
            name="target",
            field=core.fields.EncryptedTextField(
                help_text="The comma-separated addresses, or the webhook URL, when it was written."
            ),
        ),
        migrations.AlterField(
            model_name="reviewergroupnotifications",
            name="slack_webhook_url",
            field=core.fields.EncryptedTextField(
                blank=True,
                help_text='A Slack-compatible incoming webhook: it receives {"text": ...}. Stored encrypted.',
                max_length=2000,
                validators=[django.core.validators.URLValidator()],
            ),
        ),
        migrations.RunPython(encrypt_stored_values, decrypt_stored_values, elidable=False),
    ]
