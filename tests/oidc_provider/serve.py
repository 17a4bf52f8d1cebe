"""Run the test OpenID Connect provider: migrate, register one user and the gateway as a client, serve.

Usage: python -m tests.oidc_provider.serve PORT REDIRECT_URI (environment: OIDC_PROVIDER_DB, OIDC_PROVIDER_KEY).
Prints "ready" once it serves.
"""

import os
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server

CLIENT_ID = "countersign-test"
CLIENT_SECRET = "countersign-test-secret"
USERNAME, PASSWORD, EMAIL = "ivy", "provider password 1", "ivy@example.org"
GROUPS = ["idp-finance", "idp-everyone"]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    port, redirect_uri = int(sys.argv[1]), sys.argv[2]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oidc_provider.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(USERNAME, email=EMAIL, password=PASSWORD)
    user.groups.add(*(Group.objects.create(name=name) for name in GROUPS))
    Application.objects.create(
        name="Countersign",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    server = make_server("127.0.0.1", port, WSGIHandler(), server_class=ThreadingWSGIServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
