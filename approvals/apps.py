from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from policies.simulation import history_source_register

        from .api import schema  # noqa: F401  registers the OpenAPI auth extension
        from .replay import simulation_history

        history_source_register(simulation_history)
