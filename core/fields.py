"""``EncryptedTextField``: a text column whose value is encrypted at rest (``core.crypto``).

Code reads and writes the attribute as plain text; the column holds ``enc:v1:<Fernet token>``.
A row written before encryption (no prefix) reads as itself until ``manage.py
rotate_encryption_keys`` (or the migration that introduced the field) encrypts it; an empty
string stays empty (it means "not set" and is no secret).

What it cannot do: an encrypted value is different every time it is written, so the database
cannot compare it. Every lookup but ``isnull`` is refused (a ``FieldError``), not silently empty.

A value no configured key opens loads without error (the rest of the row stays usable, e.g. to
deactivate an agent); reading that attribute raises ``DecryptionError`` naming model, field and
row, and saving the row writes the stored value back unchanged (``values()`` gives a ``StoredValue``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.apps import apps
from django.db import models, transaction
from django.db.models.functions import Cast
from django.db.models.query_utils import DeferredAttribute
from django.utils.html import format_html

from .crypto import DecryptionError, decrypt, encrypt, is_encrypted, mask, reencrypt


@dataclass(frozen=True)
class StoredValue:
    """The column's value exactly as stored, written back unchanged: a value no configured key opened
    when the row was loaded (so saving the row does not lose it), or a raw value a migration writes."""

    stored: str


def _describe(field: models.Field, instance: models.Model | None = None) -> str:
    where = f"{field.model._meta.label}.{field.name}"
    return f"{where} of row pk={instance.pk!r}" if instance is not None else where


class _EncryptedAttribute(DeferredAttribute):
    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if isinstance(value, StoredValue):
            # Raises, naming the row, unless a key able to open it was added since the row was loaded.
            value = decrypt(value.stored, what=_describe(self.field, instance))
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):
        # A data descriptor, so that every read passes through __get__ (a plain DeferredAttribute is
        # skipped once the value sits in the instance's __dict__).
        instance.__dict__[self.field.attname] = value


class KeepCurrent:
    """A form's answer meaning "leave the stored secret as it is" (its input was left empty)."""


KEEP_CURRENT = KeepCurrent()


class SecretInput(forms.Widget):
    """A text input that never renders the secret: it shows a masked hint, and a box to clear it."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        hint = f"saved: {mask(value)}; type a new value to replace it" if value else "not set"
        return format_html(
            '<input type="text" name="{}" id="{}" value="" placeholder="{}" autocomplete="off" size="60">'
            '<label><input type="checkbox" name="{}__clear"> clear</label>',
            name,
            attrs.get("id", f"id_{name}"),
            hint,
            name,
        )

    def value_from_datadict(self, data, files, name):
        return (data.get(name, "").strip(), f"{name}__clear" in data)

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}__clear" not in data


class SecretFormField(forms.CharField):
    """Empty keeps the stored value (it is never sent to the browser); "clear" empties it."""

    widget = SecretInput

    def to_python(self, value):
        text, clear = value if isinstance(value, tuple) else (value or "", False)
        if clear:
            return ""
        return text or KEEP_CURRENT

    def validate(self, value):
        if value is KEEP_CURRENT:
            return
        super().validate(value)

    def run_validators(self, value):
        if value is KEEP_CURRENT:
            return
        super().run_validators(value)

    def bound_data(self, data, initial):
        # A form shown again (with an error) hints at the stored value; it never echoes what was typed.
        return initial

    def has_changed(self, initial, data):
        text, clear = data if isinstance(data, tuple) else (data or "", False)
        return bool(text) or (clear and bool(initial))


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (core.crypto)"
    descriptor_class = _EncryptedAttribute

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | StoredValue | None:
        if not value or not is_encrypted(value):
            return value
        try:
            return decrypt(value, what=_describe(self))
        except DecryptionError:
            return StoredValue(stored=value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, StoredValue) or value is KEEP_CURRENT:
            return value
        return super().to_python(value)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, StoredValue):
            return value.stored
        value = super().get_prep_value(value)
        # Already a token (a value copied column to column, a fixture from dumpdata): stored as it is.
        if not value or is_encrypted(value):
            return value
        return encrypt(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # The raw attribute, so that a StoredValue is written back instead of raising.
        return model_instance.__dict__.get(self.attname, None)

    def value_to_string(self, obj: models.Model) -> str:
        # dumpdata writes the ciphertext: a fixture is a copy of the database and must not hold the secret.
        return self.get_prep_value(obj.__dict__.get(self.attname)) or ""

    def get_lookup(self, lookup_name: str):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, lookup_name: str):
        return None

    def save_form_data(self, instance: models.Model, data: Any) -> None:
        if data is not KEEP_CURRENT:
            super().save_form_data(instance, data)

    def formfield(self, **kwargs: Any) -> forms.Field:
        # The widget is not negotiable (the admin passes a textarea for every TextField): it never renders the value.
        return super().formfield(**{"form_class": SecretFormField, **kwargs, "widget": SecretInput})


def encrypted_columns() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every ``EncryptedTextField`` of every installed model, where its table defines it."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for model_field in model._meta.local_concrete_fields:
            if isinstance(model_field, EncryptedTextField):
                yield model, model_field


@dataclass
class ColumnReport:
    """What re-encrypting one column did (or would do, on a dry run)."""

    column: str
    encrypted: int = 0  # legacy plaintext, now encrypted
    rotated: int = 0  # under an older key, now under the first
    unchanged: int = 0  # already under the first key, or empty
    failed: list[Any] = field(default_factory=list)  # primary keys of values no key opens


def _raw_rows(model: type[models.Model], model_field: models.Field, *, after: Any, limit: int, lock: bool) -> list:
    # Cast: the column as text, without the field's decryption.
    rows = model._base_manager.annotate(_stored=Cast(model_field.attname, output_field=models.TextField()))
    if after is not None:
        rows = rows.filter(pk__gt=after)
    if lock:
        rows = rows.select_for_update()
    return list(rows.order_by("pk").values_list("pk", "_stored")[:limit])


def column_reencrypt(
    model: type[models.Model], field_name: str, *, batch_size: int = 500, dry_run: bool = False
) -> ColumnReport:
    """Bring every value of one encrypted column under the first key, one batch per transaction.

    Invariant: each batch's rows are locked (PostgreSQL; SQLite's write lock serialises) between
    reading and writing them, so a secret changed meanwhile (an agent's rotated webhook secret) is
    never overwritten by its old value. Running it twice changes nothing the second time. Works on
    a migration's historical model as on the live one.
    """
    model_field = model._meta.get_field(field_name)
    report = ColumnReport(column=f"{model._meta.label}.{field_name}")
    after = None
    while True:
        with transaction.atomic():
            rows = _raw_rows(model, model_field, after=after, limit=batch_size, lock=not dry_run)
            for pk, stored in rows:
                if not stored:
                    report.unchanged += 1
                    continue
                try:
                    result = reencrypt(stored, what=f"{report.column} of row pk={pk!r}")
                except DecryptionError:
                    report.failed.append(pk)
                    continue
                if not result.changed:
                    report.unchanged += 1
                    continue
                if result.was_plaintext:
                    report.encrypted += 1
                else:
                    report.rotated += 1
                if not dry_run:
                    model._base_manager.filter(pk=pk).update(**{model_field.attname: StoredValue(result.stored)})
        if len(rows) < batch_size:
            return report
        after = rows[-1][0]


def column_decrypt(model: type[models.Model], field_name: str, *, batch_size: int = 500) -> int:
    """Write every value of one column back as plaintext (a migration's reverse); returns the rows changed."""
    model_field = model._meta.get_field(field_name)
    column = f"{model._meta.label}.{field_name}"
    changed = 0
    after = None
    while True:
        with transaction.atomic():
            rows = _raw_rows(model, model_field, after=after, limit=batch_size, lock=True)
            for pk, stored in rows:
                if stored and is_encrypted(stored):
                    plaintext = decrypt(stored, what=f"{column} of row pk={pk!r}")
                    model._base_manager.filter(pk=pk).update(**{model_field.attname: StoredValue(plaintext)})
                    changed += 1
        if len(rows) < batch_size:
            return changed
        after = rows[-1][0]
