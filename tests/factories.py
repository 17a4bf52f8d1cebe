from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.models import ActionRequest, Agent
from policies.models import Policy


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "correct horse battery staple")
        if create:
            self.save()


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent-{n}")


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy

    action_pattern = factory.Sequence(lambda n: f"action_{n}")
    mode = "approve"


class PendingRequestFactory(factory.django.DjangoModelFactory):
    """A pending request written directly, for tests of what happens after submission."""

    class Meta:
        model = ActionRequest

    agent = factory.SubFactory(AgentFactory)
    action_type = "send_external_email"
    params = factory.LazyFunction(lambda: {"to": "customer@example.org", "subject": "Your refund"})
    evidence = factory.LazyFunction(
        lambda: [{"title": "Ticket 42", "url": "https://tickets.example/42", "excerpt": "Please refund me"}]
    )
    summary = "Email the customer that the refund is on its way"
    confidence = 0.9
    context = factory.LazyFunction(lambda: {"trace_id": "trace-1"})
    request_hash = "0" * 64
    status = "pending"
    mode = "approve"
    risk = "high"
    policy_pattern = "send_external_email"
    verdict_reason = "Policy sets mode approve."
    approval_ttl_seconds = 900
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=4))
