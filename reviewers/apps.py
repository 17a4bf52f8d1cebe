from django.apps import AppConfig


class ReviewersConfig(AppConfig):
    name = "reviewers"
    verbose_name = "Reviewer queue"

    def ready(self) -> None:
        # Connects the lockout log line to axes' user_locked_out signal.
        from . import login_protection  # noqa: F401
