"""Connection profiles: where an obfleet is and who calls it.

Profiles live in one JSON file in the user's config dir ($XDG_CONFIG_HOME/obfleet, by default
~/.config/obfleet), the directory 0700 and the file 0600, written whole and renamed into place.
Environment variables (OBFLEET_URL, OBFLEET_USER, OBFLEET_PASSWORD, OBFLEET_ACCESS_KEY_ID,
OBFLEET_ACCESS_KEY_SECRET) fill in or override the chosen profile, so scripts need no file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

DEFAULT = "default"
FILE_NAME = "profiles.json"
ENV_FIELDS = {
    "OBFLEET_URL": "url",
    "OBFLEET_USER": "user",
    "OBFLEET_PASSWORD": "password",
    "OBFLEET_ACCESS_KEY_ID": "access_key_id",
    "OBFLEET_ACCESS_KEY_SECRET": "access_key_secret",
}


class ProfileError(Exception):
    """A profile that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Profile:
    url: str = ""
    user: str = ""
    password: str = ""
    access_key_id: str = ""
    access_key_secret: str = ""

    @property
    def uses_access_key(self) -> bool:
        return bool(self.access_key_id)

    def checked(self, name: str) -> Profile:
        """The profile, when it says where to connect and how to sign in."""
        if not self.url:
            raise ProfileError(
                f"no obfleet URL for profile '{name}': run `obfleet login --url URL ...` "
                "or set OBFLEET_URL"
            )
        if self.uses_access_key and not self.access_key_secret:
            raise ProfileError("an access key ID without its secret (OBFLEET_ACCESS_KEY_SECRET)")
        if not self.uses_access_key and not (self.user and self.password):
            raise ProfileError(
                f"no credentials for profile '{name}': run `obfleet login` or set "
                "OBFLEET_USER and OBFLEET_PASSWORD (or OBFLEET_ACCESS_KEY_ID/_SECRET)"
            )
        return self


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "obfleet"


def _path(env: Mapping[str, str]) -> Path:
    return config_dir(env) / FILE_NAME


def load_all(env: Mapping[str, str] = os.environ) -> dict[str, Profile]:
    path = _path(env)
    if not path.exists():
        return {}
    if path.stat().st_mode & 0o077:  # as ssh does with a key: a secret others can read is spent
        raise ProfileError(f"{path} holds secrets and others may read it: chmod 600 {path}")
    try:
        stored = json.loads(path.read_text())
        return {name: Profile(**fields) for name, fields in stored.items()}
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"{path} is not a profiles file: {exc}") from exc


def save(name: str, profile: Profile, env: Mapping[str, str] = os.environ) -> Path:
    """Store `profile` as `name`, readable by the user alone."""
    return _write({**load_all(env), name: profile}, env)


def remove(name: str, env: Mapping[str, str] = os.environ) -> bool:
    profiles = load_all(env)
    if profiles.pop(name, None) is None:
        return False
    _write(profiles, env)
    return True


def _write(profiles: dict[str, Profile], env: Mapping[str, str]) -> Path:
    path = _path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({n: asdict(p) for n, p in profiles.items()}, out, indent=2, sort_keys=True)
    os.chmod(partial, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
    partial.replace(path)
    return path


def resolve(name: str | None, env: Mapping[str, str] = os.environ) -> Profile:
    """The profile `name` (else OBFLEET_PROFILE, else 'default'), overridden by the environment.
    A named profile that does not exist is an error; the default may be absent."""
    chosen = name or env.get("OBFLEET_PROFILE") or DEFAULT
    stored = load_all(env)
    if chosen not in stored and chosen != DEFAULT:
        raise ProfileError(f"no profile '{chosen}' (known: {', '.join(sorted(stored)) or 'none'})")
    profile = stored.get(chosen, Profile())
    overrides = {field: env[var] for var, field in ENV_FIELDS.items() if env.get(var)}
    if "access_key_id" in overrides:  # an access key from the environment wins over a login
        profile = replace(profile, user="", password="")
    elif "user" in overrides:
        profile = replace(profile, access_key_id="", access_key_secret="")
    return replace(profile, **overrides).checked(chosen)
