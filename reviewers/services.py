from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_otp import verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from approvals.models import REVIEWER_TOKEN_PREFIX, ActionRequest, PushSubscription, Status, Vote, hash_api_key
from approvals.realtime import publish_claim_changed
from approvals.selectors import action_request_for_reviewer
from approvals.visibility import reviewer_may_see
from core.errors import IdempotencyConflict, InvalidInput, PermissionRefused
from core.netguard import validate_outbound_url
from core.timefmt import isoformat

from .models import CardOpening, Claim, PersonalAccessToken, SecondOpinion, SsoIdentity
from .quality import second_opinion_sampled

DEFAULT_REVIEWER_GROUP = "reviewers"


def reviewer_group_ensure(*, name: str = DEFAULT_REVIEWER_GROUP) -> Group:
    """A reviewer group is a Django group holding the review permission."""
    group, _ = Group.objects.get_or_create(name=name)
    permission = Permission.objects.get(codename="review_actionrequest", content_type__app_label="approvals")
    group.permissions.add(permission)
    return group


@transaction.atomic
def reviewer_create(
    *, username: str, password: str, group_name: str = DEFAULT_REVIEWER_GROUP, email: str = ""
) -> AbstractBaseUser:
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    user.save()
    user.groups.add(reviewer_group_ensure(name=group_name))
    return user


def sso_identity_link(*, user: AbstractBaseUser, subject: str) -> SsoIdentity:
    """Tie ``user`` to the provider's ``subject`` for good; the same pair again changes nothing.

    Invariant: one subject per account and one account per subject (both unique). A different
    subject for an account already tied is refused, as is a subject already tied to another account.
    """
    existing = SsoIdentity.objects.filter(user=user).first()
    if existing is not None:
        if existing.subject != subject:
            raise PermissionRefused("This account is tied to another single sign-on identity.")
        return existing
    try:
        with transaction.atomic():
            return SsoIdentity.objects.create(user=user, subject=subject, linked_at=timezone.now())
    except IntegrityError:
        raise PermissionRefused("This single sign-on identity is tied to another account.") from None


def _claimable(request_id: Any, user: AbstractBaseUser) -> ActionRequest | None:
    try:
        request = ActionRequest.objects.get(pk=request_id, status=Status.PENDING, expires_at__gt=timezone.now())
    except (ActionRequest.DoesNotExist, ValueError, ValidationError):
        return None
    return request if reviewer_may_see(reviewer=user, request=request) else None


def claim_open(*, request_id: Any, user: AbstractBaseUser) -> dict[str, str] | None:
    """Mark a pending request as being reviewed by ``user``, or renew that mark.

    Someone else's live claim is left alone (the reviewer still sees and may decide the
    card; the claim only tells them somebody else is on it). Returns the claim now in
    force, or None when the request cannot be reviewed any more.
    """
    request = _claimable(request_id, user)
    if request is None:
        return None
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.COUNTERSIGN_CLAIM_TIMEOUT_SECONDS)
    # Compare-and-swap: take the claim only if it is ours already or has lapsed, so two
    # reviewers opening the same card at once never both believe they hold it.
    taken = (
        Claim.objects.filter(request=request)
        .filter(Q(user=user) | Q(expires_at__lte=now))
        .update(user=user, claimed_at=now, expires_at=expires_at)
    )
    if not taken:
        try:
            with transaction.atomic():
                Claim.objects.create(request=request, user=user, claimed_at=now, expires_at=expires_at)
        except IntegrityError:
            holder = Claim.objects.select_related("user").get(request=request)
            return {"by": holder.user.get_username(), "expires_at": isoformat(holder.expires_at)}
    # The first opening only (a renewal or a later claim keeps it): reviewer quality times decisions from it.
    CardOpening.objects.bulk_create([CardOpening(request=request, user=user, opened_at=now)], ignore_conflicts=True)
    claim = {"by": user.get_username(), "expires_at": isoformat(expires_at)}
    transaction.on_commit(lambda: publish_claim_changed(request, **claim))
    return claim


def claim_release(*, request_id: Any, user: AbstractBaseUser) -> bool:
    """Drop ``user``'s claim on a request (they closed the card or left the page)."""
    try:
        request = ActionRequest.objects.get(pk=request_id)
    except (ActionRequest.DoesNotExist, ValueError, ValidationError):
        return False
    deleted, _ = Claim.objects.filter(request=request, user=user).delete()
    if deleted:
        transaction.on_commit(lambda: publish_claim_changed(request, by=user.get_username(), expires_at=None))
    return bool(deleted)


# --- blind second opinions (reviewer agreement) -------------------------------------------------


def second_opinion_record(*, user: AbstractBaseUser, request_id: Any, approve: bool) -> SecondOpinion:
    """Record ``user``'s blind call on a decided request of the second-opinion sample.

    Invariant: at most one opinion per (request, reviewer); only on a request in the sample
    that a human decided, that ``user`` may see and neither decided nor voted on. It changes
    nothing about the request: the first decision stands.
    """
    request = action_request_for_reviewer(reviewer=user, request_id=request_id, related=("decision",))
    decision = getattr(request, "decision", None)
    rate = settings.COUNTERSIGN_SECOND_OPINION_RATE
    if decision is None or decision.reviewer_id is None or not second_opinion_sampled(request.pk, rate):
        raise InvalidInput("This request is not in the second-opinion sample.", code="not_sampled")
    if decision.reviewer_id == user.pk or Vote.objects.filter(request=request, reviewer=user).exists():
        raise PermissionRefused("You decided this request: a second opinion must come from someone else.")
    try:
        with transaction.atomic():
            return SecondOpinion.objects.create(
                request=request, reviewer=user, approve=approve, created_at=timezone.now()
            )
    except IntegrityError:
        raise IdempotencyConflict("You already gave your opinion on this request.", code="already_recorded") from None


# --- the optional second factor (TOTP) ---------------------------------------------------------

TOTP_DEVICE_NAME = "Authenticator app"


@transaction.atomic
def totp_device_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The user's unconfirmed TOTP device, created with a fresh secret if there is none.

    A user has at most one unconfirmed device; it protects nothing until ``totp_device_confirm``.
    """
    pending = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk")
    device = pending.first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def totp_device_confirm(*, user: AbstractBaseUser, token: str) -> TOTPDevice | None:
    """Confirm the user's pending device with a first code from it; None if the code is wrong (or throttled).

    From then on every sign-in of this user needs a code. The check goes through django-otp's
    ``verify_token`` (row lock, throttling after wrong codes, no code accepted twice).
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None or verify_token(user, device.persistent_id, token) is None:
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(pk=device.pk, confirmed=False).update(confirmed=True)
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
    device.refresh_from_db()
    return device


def totp_device_check(*, user: AbstractBaseUser, token: str) -> TOTPDevice | None:
    """The confirmed device that accepts ``token`` (throttled, each code once), or None."""
    for device in TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"):
        verified = verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None


def totp_device_remove(*, user: AbstractBaseUser, token: str) -> bool:
    """Remove the user's TOTP devices, proven with a current code from a confirmed one; False if the code is wrong."""
    if totp_device_check(user=user, token=token) is None:
        return False
    TOTPDevice.objects.filter(user=user).delete()
    return True


# --- personal access tokens (the reviewer API) ---------------------------------------------

TOKEN_NAME_MAX_CHARS = 100


def personal_access_token_create(
    *, user: AbstractBaseUser, name: str, lifetime_days: int, read_only: bool = False
) -> tuple[PersonalAccessToken, str]:
    """Issue a token for ``user`` and return it with the raw token, which is never stored: show it once.

    Invariant: every token expires, no later than COUNTERSIGN_PAT_MAX_LIFETIME_DAYS after it was made.
    """
    name = (name or "").strip()
    if not name or len(name) > TOKEN_NAME_MAX_CHARS:
        raise InvalidInput(
            f"Give the token a name of 1 to {TOKEN_NAME_MAX_CHARS} characters (what will use it).",
            code="invalid_token_name",
        )
    longest = settings.COUNTERSIGN_PAT_MAX_LIFETIME_DAYS
    if isinstance(lifetime_days, bool) or not isinstance(lifetime_days, int) or not 1 <= lifetime_days <= longest:
        raise InvalidInput(f"A token lives from 1 to {longest} days.", code="invalid_token_lifetime")
    raw = REVIEWER_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name,
        prefix=raw[: len(REVIEWER_TOKEN_PREFIX) + 6],
        token_hash=hash_api_key(raw),
        read_only=bool(read_only),
        created_at=now,
        expires_at=now + timedelta(days=lifetime_days),
    )
    return token, raw


def personal_access_token_revoke(*, user: AbstractBaseUser, token_id: Any) -> bool:
    """Revoke one of ``user``'s own tokens; True when this call revoked it (False: not theirs, or revoked already)."""
    try:
        return bool(
            PersonalAccessToken.objects.filter(pk=int(token_id), user=user, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        )
    except (TypeError, ValueError):
        return False


def personal_access_token_touch(*, token: PersonalAccessToken, now: Any) -> None:
    """Record that the token was used, at most once a minute: no write on every request."""
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- Web Push subscriptions: a reviewer's devices ---------------------------------------------------


def _b64url_bytes(value: Any, *, length: int, what: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInput(f"keys.{what} must be a base64url string.", code="invalid_subscription")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise InvalidInput(f"keys.{what} is not base64url.", code="invalid_subscription") from None
    if len(raw) != length:
        raise InvalidInput(f"keys.{what} must be {length} bytes.", code="invalid_subscription")
    return raw


def push_subscription_save(*, user: AbstractBaseUser, subscription: Any, device: str = "") -> PushSubscription:
    """Enable push on one device: a browser's ``PushSubscription.toJSON()`` (endpoint and keys).

    The same endpoint subscribed again (the device signed in as someone else) moves to ``user``.
    """
    if not isinstance(subscription, dict) or not isinstance(subscription.get("keys"), dict):
        raise InvalidInput(
            'Expected {"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}.', code="invalid_subscription"
        )
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1000:
        raise InvalidInput("endpoint must be the push service's URL.", code="invalid_subscription")
    validate_outbound_url(endpoint, resolve=False)
    keys = subscription["keys"]
    if _b64url_bytes(keys.get("p256dh"), length=65, what="p256dh")[0] != 4:
        raise InvalidInput("keys.p256dh must be an uncompressed P-256 point.", code="invalid_subscription")
    _b64url_bytes(keys.get("auth"), length=16, what="auth")
    saved, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={"user": user, "p256dh": keys["p256dh"], "auth": keys["auth"], "device": str(device)[:200]},
    )
    return saved


def push_subscription_remove(*, user: AbstractBaseUser, subscription_id: Any = None, endpoint: str = "") -> bool:
    mine = PushSubscription.objects.filter(user=user)
    mine = mine.filter(pk=subscription_id) if subscription_id is not None else mine.filter(endpoint=endpoint)
    return bool(mine.delete()[0])
