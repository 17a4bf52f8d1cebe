"""The audit trail becomes a hash chain per request (approvals.audit_chain).

Existing events are chained in the order they were written (created_at, then id), a batch
of requests at a time, and each request's head is set to its last event.
"""

from django.db import migrations, models

from approvals.audit_chain import audit_event_hash

BATCH = 200


def chain_existing_events(apps, schema_editor):
    ActionRequest = apps.get_model("approvals", "ActionRequest")
    AuditEvent = apps.get_model("approvals", "AuditEvent")
    db = schema_editor.connection.alias
    after = None
    while True:
        requests = ActionRequest.objects.using(db).order_by("pk")
        if after is not None:
            requests = requests.filter(pk__gt=after)
        ids = list(requests.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        after = ids[-1]
        heads = {pk: ActionRequest(pk=pk, audit_length=0, audit_head="") for pk in ids}
        events = list(AuditEvent.objects.using(db).filter(request_id__in=ids).order_by("request_id", "created_at", "id"))
        for event in events:
            head = heads[event.request_id]
            event.position = head.audit_length + 1
            event.prev_hash = head.audit_head
            event.hash = audit_event_hash(event)
            head.audit_length, head.audit_head = event.position, event.hash
        AuditEvent.objects.using(db).bulk_update(events, ["position", "prev_hash", "hash"], batch_size=BATCH)
        chained = [head for head in heads.values() if head.audit_length]
        ActionRequest.objects.using(db).bulk_update(chained, ["audit_length", "audit_head"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0014_encrypt_secrets"),
    ]

    operations = [
        migrations.AddField(
            model_name="actionrequest",
            name="audit_length",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="actionrequest",
            name="audit_head",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="position",
            field=models.PositiveIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("request", "position"), name="one_audit_event_per_position"),
        ),
    ]
