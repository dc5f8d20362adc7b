"""A real CAS server for the end-to-end suite: django-mama-cas (PyPI) in a tiny Django project,
on loopback only.

    python server.py PORT WORKDIR

Serves CAS 1.0/2.0/3.0 under http://127.0.0.1:PORT/cas/ (login form, /serviceValidate,
/p3/serviceValidate, /logout). Users (password = login + "-password"):
    jdoe   e-mail jdoe@example.org, display name 张三, groups staff and faculty
    bob    e-mail bob@example.org, no groups
Attributes are released to every service (CAS 3.0 `cas:attributes`): mail, displayName,
memberOf (repeated). Single logout is on: logging out at /cas/logout POSTs a `logoutRequest`
to every service URL the user's tickets were issued for. The SQLite database lives in WORKDIR.
"""

import os
import sys

import django
from django.conf import settings
from django.urls import include, path

PORT = int(sys.argv[1])
WORKDIR = sys.argv[2]

USERS = {
    "jdoe": {"email": "jdoe@example.org", "first_name": "张三", "groups": ["staff", "faculty"]},
    "bob": {"email": "bob@example.org", "first_name": "Bob", "groups": []},
}


def attributes(user, service):
    """The attributes mama-cas releases (MAMA_CAS_SERVICES CALLBACKS)."""
    return {
        "mail": user.email,
        "displayName": user.first_name,
        "memberOf": sorted(g.name for g in user.groups.all()),
    }


settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY="e2e-only-not-a-secret-" + "x" * 40,
    ROOT_URLCONF="__main__",
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "mama_cas",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": os.path.join(WORKDIR, "cas.sqlite3")}},
    STATIC_URL="/static/",
    USE_TZ=True,
    # Distinct names, so the CAS cookies never look like the filter's.
    SESSION_COOKIE_NAME="cas_sessionid",
    CSRF_COOKIE_NAME="cas_csrftoken",
    MAMA_CAS_SERVICES=[{
        "SERVICE": r"^http://127\.0\.0\.1:\d+/",
        "CALLBACKS": ["__main__.attributes"],
        "LOGOUT_ALLOW": True,
    }],
    MAMA_CAS_FOLLOW_LOGOUT_URL=True,
    LOGGING={"version": 1, "disable_existing_loggers": False,
             "handlers": {"console": {"class": "logging.StreamHandler"}},
             "loggers": {"mama_cas": {"handlers": ["console"], "level": "INFO"}}},
)


def main():
    django.setup()
    # The URL configuration is this module; mama_cas.urls can only be imported once set up.
    globals()["urlpatterns"] = [path("cas/", include("mama_cas.urls"))]
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    for login, info in USERS.items():
        user, _ = User.objects.get_or_create(username=login)
        user.email = info["email"]
        user.first_name = info["first_name"]
        user.set_password(login + "-password")
        user.save()
        user.groups.set([Group.objects.get_or_create(name=g)[0] for g in info["groups"]])
    call_command("runserver", f"127.0.0.1:{PORT}", use_reloader=False, verbosity=1)


if __name__ == "__main__":
    main()
