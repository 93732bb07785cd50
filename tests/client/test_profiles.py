"""Profiles on disk and from the environment, without a server: which one is chosen, what the
environment overrides, and a profiles file others can read is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from obfleet.client.profiles import Profile, ProfileError, resolve, save


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), **extra}


def test_chosen_profile_and_environment_overrides(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    save("default", Profile(url="http://a", user="u", password="p"), env)
    save("ak", Profile(url="http://b", access_key_id="AK", access_key_secret="SK"), env)
    assert resolve(None, env).url == "http://a"
    assert resolve("ak", env).uses_access_key
    assert resolve(None, {**env, "OBFLEET_PROFILE": "ak"}).url == "http://b"
    # A user from the environment replaces a stored access key, and the other way round.
    login = resolve("ak", {**env, "OBFLEET_USER": "v", "OBFLEET_PASSWORD": "q"})
    assert (login.user, login.password, login.uses_access_key) == ("v", "q", False)
    keyed = resolve(None, {**env, "OBFLEET_ACCESS_KEY_ID": "K", "OBFLEET_ACCESS_KEY_SECRET": "S"})
    assert (keyed.user, keyed.access_key_id, keyed.url) == ("", "K", "http://a")
    with pytest.raises(ProfileError, match="without its secret"):
        resolve(None, {**env, "OBFLEET_ACCESS_KEY_ID": "K"})
    with pytest.raises(ProfileError, match="no profile 'nope'"):
        resolve("nope", env)


def test_a_profiles_file_others_can_read_is_refused(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    path = save("default", Profile(url="http://a", user="u", password="p"), env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(ProfileError, match="chmod 600"):
        resolve(None, env)


def test_nothing_to_connect_with(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="obfleet login"):
        resolve(None, env_for(tmp_path))
    with pytest.raises(ProfileError, match="no credentials"):
        resolve(None, env_for(tmp_path, OBFLEET_URL="http://a"))
