"""System checks: each id compared to the full message (DESIGN.md section 5)."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning, run_checks

from djftpd.checks import Codes, Hints, Messages


def djftpd_messages():
    return [message for message in run_checks() if message.id.startswith("djftpd.")]


def test_test_settings_pass_every_check():
    assert djftpd_messages() == []


@pytest.mark.parametrize("secret", [None, "", 12345])
def test_e001_secret_missing(settings, secret):
    settings.DJFTPD = {**settings.DJFTPD, "SECRET": secret}

    assert djftpd_messages() == [
        Error(Messages.SECRET_MISSING, hint=Hints.SECRET_MISSING, id=Codes.SECRET_MISSING)
    ]


def test_e001_without_djftpd_setting(settings):
    del settings.DJFTPD

    assert (
        Error(Messages.SECRET_MISSING, hint=Hints.SECRET_MISSING, id=Codes.SECRET_MISSING)
        in djftpd_messages()
    )


@pytest.mark.parametrize("secret", ["s" * 31, "é" * 15, b"b" * 31])
def test_e002_secret_shorter_than_32_bytes(settings, secret):
    settings.DJFTPD = {**settings.DJFTPD, "SECRET": secret}

    assert djftpd_messages() == [
        Error(Messages.SECRET_TOO_SHORT, hint=Hints.SECRET_TOO_SHORT, id=Codes.SECRET_TOO_SHORT)
    ]


@pytest.mark.parametrize("secret", ["s" * 32, "é" * 16, b"b" * 32])
def test_32_bytes_is_long_enough(settings, secret):
    settings.DJFTPD = {**settings.DJFTPD, "SECRET": secret}

    assert djftpd_messages() == []


def perms_error(setting: str, problem: str) -> Error:
    return Error(
        Messages.PERMS_INVALID.format(setting=setting, problem=problem),
        hint=Hints.PERMS_INVALID,
        id=Codes.PERMS_INVALID,
    )


def test_e003_invalid_perms_string(settings):
    settings.DJFTPD = {**settings.DJFTPD, "PERMS": "elrxz"}

    assert djftpd_messages() == [perms_error('DJFTPD["PERMS"]', "unknown permission letters 'xz'")]


def test_e003_perms_of_the_wrong_type(settings):
    settings.DJFTPD = {**settings.DJFTPD, "PERMS": ["e", "l"]}

    assert djftpd_messages() == [
        perms_error('DJFTPD["PERMS"]', "permission letters must be a string, not list")
    ]


def test_perms_callable_is_accepted(settings):
    settings.DJFTPD = {**settings.DJFTPD, "PERMS": lambda user: "elr"}

    assert djftpd_messages() == []


def test_e003_invalid_legacy_perms(set_legacy):
    set_legacy("read_perms", "elrq")
    set_legacy("write_perms", "W")

    errors = [m for m in djftpd_messages() if m.id == Codes.PERMS_INVALID]

    assert errors == [
        perms_error("read_perms", "unknown permission letters 'q'"),
        perms_error("write_perms", "unknown permission letters 'W'"),
    ]


def test_e004_urls_not_mounted(settings):
    settings.ROOT_URLCONF = "tests.urls_unmounted"

    assert djftpd_messages() == [
        Error(Messages.URLS_NOT_MOUNTED, hint=Hints.URLS_NOT_MOUNTED, id=Codes.URLS_NOT_MOUNTED)
    ]


def test_w001_one_warning_per_legacy_setting(settings, set_legacy):
    set_legacy("get_ftp_home_dir", lambda username: f"/srv/ftp/{username}")
    set_legacy("write_perms", "w")
    settings.FTP_PORT = 2121
    settings.FTP_WELCOME_MSG = "Hi"

    assert djftpd_messages() == [
        Warning(
            Messages.LEGACY_SETTING.format(name=name),
            hint=Hints.LEGACY_SETTING.format(new=new),
            id=Codes.LEGACY_SETTING,
        )
        for name, new in [
            ("get_ftp_home_dir", "HOME_DIR"),
            ("write_perms", "PERMS"),
            ("FTP_WELCOME_MSG", "WELCOME"),
            ("FTP_PORT", "LISTEN"),
        ]
    ]


@pytest.mark.parametrize("home_root", [None, ""])
def test_w002_home_root_unset(settings, home_root):
    settings.DJFTPD = {**settings.DJFTPD, "HOME_ROOT": home_root, "HOME_DIR": "/srv/{username}"}

    assert djftpd_messages() == [
        Warning(Messages.HOME_ROOT_UNSET, hint=Hints.HOME_ROOT_UNSET, id=Codes.HOME_ROOT_UNSET)
    ]


def test_w002_with_only_the_legacy_home(settings, set_legacy):
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"]}
    set_legacy("get_ftp_home_dir", lambda username: f"/srv/ftp/{username}")

    assert Codes.HOME_ROOT_UNSET in [m.id for m in djftpd_messages()]
    assert Codes.NO_HOME_SOURCE not in [m.id for m in djftpd_messages()]


@pytest.mark.parametrize("home_root", [None, ""])
def test_e005_no_home_source_at_all(settings, home_root):
    """Issue 14 item 3: every login failed (a 500 then) while check only warned W002. An
    error, and W002 is not repeated: setting HOME_ROOT fixes both."""
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"], "HOME_ROOT": home_root}

    assert djftpd_messages() == [
        Error(Messages.NO_HOME_SOURCE, hint=Hints.NO_HOME_SOURCE, id=Codes.NO_HOME_SOURCE)
    ]


def test_e005_without_home_root_key(settings):
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"]}

    assert [m.id for m in djftpd_messages()] == [Codes.NO_HOME_SOURCE]


@pytest.mark.parametrize("empty", [[], "", None, ()])
def test_w003_sidecar_urls_set_empty(settings, empty):
    """Issue 12 item 6: with no sidecar to tell, a changed password keeps working over FTP
    for the cache TTL; an explicit empty SIDECAR_URLS says so once, at check time."""
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": empty}

    assert djftpd_messages() == [
        Warning(Messages.NO_SIDECAR_URLS, hint=Hints.NO_SIDECAR_URLS, id=Codes.NO_SIDECAR_URLS)
    ]


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "nonsense"])
def test_w004_no_sidecar_urls_and_no_fixed_ops_port(settings, listen):
    settings.DJFTPD = {**settings.DJFTPD, "OPS_LISTEN": listen}

    assert djftpd_messages() == [
        Warning(
            Messages.NO_LOCAL_SIDECAR.format(listen=listen),
            hint=Hints.NO_LOCAL_SIDECAR,
            id=Codes.NO_LOCAL_SIDECAR,
        )
    ]


def test_sidecar_urls_unset_or_set_pass(settings):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": ["http://10.0.0.7:9121/"]}
    assert djftpd_messages() == []

    settings.DJFTPD = {**settings.DJFTPD, "OPS_LISTEN": "0.0.0.0:9200"}
    settings.DJFTPD.pop("SIDECAR_URLS")
    assert djftpd_messages() == []


def test_w005_unknown_key_is_named_with_the_nearest_known_one(settings):
    """Issue 14 item 12: a typo (HOME_ROOTS) was silently ignored; the home root then was
    "/" with nothing but W002 to hint at why."""
    settings.DJFTPD = {**settings.DJFTPD, "HOME_ROOTS": "/srv", "BANANA": 1}

    assert djftpd_messages() == [
        Warning(
            Messages.UNKNOWN_KEY.format(key="BANANA"),
            hint=Hints.UNKNOWN_KEY,
            id=Codes.UNKNOWN_KEY,
        ),
        Warning(
            Messages.UNKNOWN_KEY.format(key="HOME_ROOTS"),
            hint=Hints.UNKNOWN_KEY_NEAR.format(near="HOME_ROOT"),
            id=Codes.UNKNOWN_KEY,
        ),
    ]


def deploy_messages() -> list[str]:
    return [m.id for m in run_checks(include_deployment_checks=True) if m.id.startswith("djftpd.")]


@pytest.mark.parametrize(
    ("djftpd", "expected"),
    [
        ({}, [Codes.TLS_OFF]),  # the test settings: loopback (the default), TLS off
        ({"LISTEN": "0.0.0.0:21"}, [Codes.TLS_OFF, Codes.PLAIN_FTP_EXPOSED]),
        ({"LISTEN": "[::1]:21", "TLS_MODE": "explicit"}, []),
        ({"LISTEN": "192.0.2.1:21", "TLS_MODE": "explicit"}, [Codes.PLAIN_FTP_EXPOSED]),
        ({"LISTEN": "0.0.0.0:21", "TLS_MODE": "required"}, []),
        ({"LISTEN": "0.0.0.0:21", "ENV": {"DJFTPD_TLS_MODE": "implicit"}}, []),
        ({"ENV": {"DJFTPD_LISTEN": "0.0.0.0:21"}}, [Codes.TLS_OFF, Codes.PLAIN_FTP_EXPOSED]),
    ],
)
def test_deploy_checks_w010_w011(settings, djftpd, expected):
    settings.DJFTPD = {**settings.DJFTPD, "REQUIRE_PERMISSION": "djftpd.use_ftp", **djftpd}

    assert deploy_messages() == expected


def test_deploy_check_w013_without_require_permission(settings):
    settings.DJFTPD = {**settings.DJFTPD, "TLS_MODE": "required"}

    assert deploy_messages() == [Codes.NO_FTP_PERMISSION_REQUIRED]
    settings.DJFTPD = {**settings.DJFTPD, "REQUIRE_PERMISSION": "djftpd.use_ftp"}
    assert deploy_messages() == []


def test_deploy_checks_stay_out_of_plain_check(settings):
    settings.DJFTPD = {**settings.DJFTPD, "LISTEN": "0.0.0.0:21"}

    assert djftpd_messages() == []


@pytest.mark.parametrize(
    ("django_url", "allowed", "debug", "expected"),
    [
        ("http://127.0.0.1:8000/ftp/", ["testserver", "127.0.0.1"], False, []),
        ("http://127.0.0.1:8000/ftp/", ["example.com"], False, [Codes.DJANGO_URL_HOST_NOT_ALLOWED]),
        ("http://127.0.0.1:8000/ftp/", [], True, []),  # DEBUG allows loopback by default
        ("http://[::1]:8000/ftp/", ["[::1]"], False, []),
        ("http://django.internal/ftp/", [".internal"], False, []),
        ("http://django:8000/ftp/", ["*"], False, []),
    ],
)
def test_w006_django_url_host_must_be_allowed(settings, django_url, allowed, debug, expected):
    settings.DJFTPD = {**settings.DJFTPD, "DJANGO_URL": django_url}
    settings.ALLOWED_HOSTS = allowed
    settings.DEBUG = debug

    assert [m.id for m in djftpd_messages()] == expected


@pytest.mark.parametrize(
    ("django_url", "exempt", "expected"),
    [
        ("http://127.0.0.1:8000/ftp/", [], [Codes.DJANGO_URL_REDIRECTED]),
        ("http://127.0.0.1:8000/ftp/", [r"^ftp/"], []),
        ("http://127.0.0.1:8000/ftp/", [r"^ftp/auth/$"], [Codes.DJANGO_URL_REDIRECTED]),
        ("https://127.0.0.1/ftp/", [], []),
    ],
)
def test_w007_secure_ssl_redirect_must_spare_the_sidecar(settings, django_url, exempt, expected):
    settings.DJFTPD = {**settings.DJFTPD, "DJANGO_URL": django_url}
    settings.MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", *settings.MIDDLEWARE]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = exempt

    messages = djftpd_messages()

    assert [m.id for m in messages] == expected
    if expected:
        assert messages[0].hint == Hints.DJANGO_URL_REDIRECTED.format(path="ftp/")


def test_w007_without_security_middleware(settings):
    settings.SECURE_SSL_REDIRECT = True

    assert djftpd_messages() == []


@pytest.mark.parametrize("value", ["False", 1, None])
def test_e006_compact_activity_log_not_a_bool(settings, value):
    settings.DJFTPD = {**settings.DJFTPD, "COMPACT_ACTIVITY_LOG": value}

    assert djftpd_messages() == [
        Error(
            Messages.COMPACT_NOT_BOOL.format(value=value),
            hint=Hints.COMPACT_NOT_BOOL,
            id=Codes.COMPACT_NOT_BOOL,
        )
    ]


@pytest.mark.parametrize("value", [True, False])
def test_e006_not_for_a_bool(settings, value):
    settings.DJFTPD = {**settings.DJFTPD, "COMPACT_ACTIVITY_LOG": value}

    assert djftpd_messages() == []
