"""The client address trusts X-Forwarded-For only as far as the configured proxies."""

from __future__ import annotations

from django.test import RequestFactory

from core.clientaddr import client_address


def request(remote: str = "10.0.0.1", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_socket_address_is_used_and_the_header_ignored(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 0

    assert client_address(request(forwarded="192.0.2.1")) == "10.0.0.1"


def test_with_one_proxy_the_rightmost_forwarded_address_is_the_client(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 1

    assert client_address(request(forwarded="203.0.113.9, 192.0.2.1")) == "192.0.2.1"


def test_with_two_proxies_the_second_from_the_right_is_the_client(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 2

    assert client_address(request(forwarded="203.0.113.9, 192.0.2.1, 10.1.1.1")) == "192.0.2.1"


def test_fewer_hops_than_proxies_falls_back_to_the_socket_address(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 2

    assert client_address(request(forwarded="192.0.2.1")) == "10.0.0.1"


def test_a_forwarded_value_that_is_not_an_address_falls_back_to_the_socket_address(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 1

    assert client_address(request(forwarded="'; drop table --")) == "10.0.0.1"


def test_an_unusable_socket_address_gives_none(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 0

    assert client_address(request(remote="unix:/run/socket")) is None


def test_ipv6_addresses_are_normalised(settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 1

    assert client_address(request(forwarded="2001:DB8::0001")) == "2001:db8::1"
