"""Settings for `make run` on a workstation: zero configuration, embedded defaults.

Secrets not given in the environment are generated once per checkout and kept in
`var/local-secrets.json`, so tokens survive restarts and nothing secret is in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

_VAR = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parents[2] / "var"))


def _local_secret(name: str) -> str:
    store = _VAR / "local-secrets.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(store.read_text()) if store.exists() else {}
    if name not in known:
        known[name] = secrets.token_urlsafe(48)
        store.write_text(json.dumps(known))
        store.chmod(0o600)
    return str(known[name])


# Not given: unset or empty (an empty key would stop the start, naming the variable).
for _name in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY"):
    if not os.environ.get(_name):
        os.environ[_name] = _local_secret(_name)
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")

from config.settings.base import *  # noqa: E402,F403

# Static files straight from the apps' folders: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None
