"""What several apps share and no app owns.

Errors and the JSON error shape, the strict base serializer, canonical JSON and hashing,
time formatting, keyset cursors, JSON request bodies, the outbound-network guard and the
outbox. Nothing here imports an app: ``policies`` builds on this package only,
``approvals`` on ``policies`` and this, ``reviewers`` and ``evaluation`` on ``approvals``.
"""
