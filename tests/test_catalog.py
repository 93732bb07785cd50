"""The OBProxy parameter catalog: its data, the OCP view of it, and request validation."""

from __future__ import annotations

import dataclasses
import json
import re
from importlib import resources
from typing import Any

import pytest

from obfleet.obproxy import catalog
from obfleet.obproxy.catalog import (
    ParameterError,
    ParameterInfo,
    command_line_safe,
    get,
    parse_version,
    validate_parameters,
    validate_value,
)

# The keys of a ParameterInfo in the sample of GET /api/v2/obproxy/parameterInfo.
OCP_SAMPLE_KEYS = {
    "allowedStringValues",
    "defaultValue",
    "description",
    "explanation",
    "id",
    "maxValue",
    "minValue",
    "name",
    "needRestart",
    "readonly",
    "type",
    "version",
}
PROBE_VERSIONS = ["1.9.1", "3.1.0", "3.2.3", "4.0.0", "4.1.0", "4.2.1.0", "4.2.2", "4.2.3.0"]
PROBE_VERSIONS += ["4.3.0", "4.3.1.0", "4.3.5.0"]
# What each source header holds (git show <tag>:src/obproxy/obutils/ob_proxy_config.h):
# DEF_* items, of which MEMORY-visible and #ifdef ERRSIM ones; the catalog keeps the rest.
HEADER_COUNTS = {
    "3.2.3": (226, 6, 0),
    "4.2.3": (265, 6, 1),
    "4.3.1": (300, 6, 1),
}


def info(type_: str, **changes: Any) -> ParameterInfo:
    """A made-up parameter, for the types and flags the real catalog does not use."""
    base = ParameterInfo(
        id=0,
        name="made_up",
        type=type_,
        default_value="",
        min_value=None,
        max_value=None,
        allowed_string_values="[]",
        need_restart=False,
        readonly=False,
        description="",
        explanation=None,
        startup=False,
        secret=False,
        versions=("4.3.1",),
    )
    return dataclasses.replace(base, **changes)


def must_get(name: str, version: str | None = None) -> ParameterInfo:
    found = get(name, version)
    assert found is not None, (name, version)
    return found


def value_of(name: str, value: str, version: str | None = None) -> str:
    return validate_value(must_get(name, version), value)


def error_of(name: str, value: str, version: str | None = None) -> str:
    with pytest.raises(ParameterError) as caught:
        value_of(name, value, version)
    return str(caught.value)


def runtime(*pairs: tuple[str, str], version: str | None = None) -> list[tuple[str, str]]:
    return validate_parameters(list(pairs), startup=False, field="parameters", version=version)


def startup(*pairs: tuple[str, str], version: str | None = None) -> list[tuple[str, str]]:
    return validate_parameters(
        list(pairs), startup=True, field="startupParameters", version=version
    )


# --- the data file -------------------------------------------------------------------------


def test_the_file_is_package_data_and_every_entry_loads() -> None:
    raw = json.loads(resources.files("obfleet.obproxy").joinpath(catalog.DATA).read_text("utf-8"))
    entries = catalog.catalog()
    assert len(entries) == len(raw["parameters"]) >= 300
    assert [entry.id for entry in entries] == list(range(1, len(entries) + 1))
    assert [s["version"] for s in raw["sources"]] == list(catalog.source_versions())
    assert {"3.2.3", "4.2.3", "4.3.1"} <= set(catalog.source_versions())
    for source in raw["sources"]:
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["tag"]


@pytest.mark.parametrize(("version", "counts"), HEADER_COUNTS.items())
def test_each_source_has_every_item_of_its_header_but_memory_and_errsim(
    version: str, counts: tuple[int, int, int]
) -> None:
    items, memory, errsim = counts
    names = [entry.name for entry in catalog.catalog(version)]
    assert len(names) == len(set(names)) == items - memory - errsim
    assert all(entry.visibility in ("USER", "SYS", None) for entry in catalog.catalog(version))


def test_the_parameters_of_the_issue_are_in_the_versions_that_have_them() -> None:
    # enable_full_link_trace arrived in 4.3.1; the other two are in every source.
    assert [v for v in catalog.source_versions() if get("enable_full_link_trace", v)] == ["4.3.1"]
    for name in ("proxy_route_policy", "enable_reroute"):
        assert all(get(name, v) for v in catalog.source_versions()), name
    trace = must_get("enable_full_link_trace")
    assert (trace.type, trace.default_value, trace.need_restart) == ("BOOL", "false", False)
    policy = must_get("proxy_route_policy", "3.2.3")
    assert (policy.type, policy.visibility, policy.description) == (
        "STRING",
        "SYS",
        "proxy route policy",
    )
    # MEMORY items are left out; an item that states no visibility is kept.
    assert get("refresh_config") is None
    assert must_get("compression_algorithm", "4.3.1").visibility is None


def test_units_ranges_and_restarts_come_from_the_header() -> None:
    assert must_get("hot_upgrade_exit_timeout", "4.3.1").unit == "us"
    assert must_get("proxy_mem_limited").unit == "MB"
    assert must_get("proxy_info_check_interval").unit == "s"
    assert must_get("client_max_connections").unit is None
    rpc = must_get("rpc_listen_port", "4.3.1")
    assert (rpc.allowed_string_values, rpc.need_restart) == ("(1024,65536)", True)
    assert "must be above 1024" in error_of("rpc_listen_port", "1024", "4.3.1")
    assert value_of("rpc_listen_port", "1025", "4.3.1") == "1025"
    assert "must be below 65536" in error_of("rpc_listen_port", "65536", "4.3.1")
    assert must_get("digest_sql_length").allowed_string_values == "[]"


@pytest.mark.parametrize("entry", catalog.catalog(), ids=lambda e: f"{e.id}-{e.name}")
def test_every_entry_is_consistent(entry: ParameterInfo) -> None:
    assert entry.type in catalog.TYPES
    assert re.fullmatch(r"[a-z][a-z0-9_]*", entry.name)
    assert entry.versions and set(entry.versions) <= set(catalog.source_versions())
    # The placement rule: needing a restart is what makes a startup parameter.
    assert entry.startup == entry.need_restart
    assert not entry.readonly
    # The default is a valid value of its own type and range.
    validate_value(entry, entry.default_value)


@pytest.mark.parametrize("entry", catalog.catalog(), ids=lambda e: f"{e.id}-{e.name}")
def test_bounds_and_allowed_values_agree(entry: ParameterInfo) -> None:
    if entry.type == "BOOL":
        assert (entry.min_value, entry.max_value, entry.allowed_string_values) == (
            "false",
            "true",
            "[]",
        )
    elif entry.type in {"INT", "DOUBLE", "TIME", "CAPACITY"}:
        low, high = entry.min_value or "", entry.max_value or ""
        if low or high:
            assert entry.allowed_string_values[1:-1] == f"{low},{high}"
        else:
            assert entry.allowed_string_values == "[]"
        unbounded = dataclasses.replace(entry, min_value=None, max_value=None)
        for bound in (entry.min_value, entry.max_value):
            if bound is not None:
                validate_value(unbounded, bound)  # a value of its own type
    else:
        assert entry.min_value is None and entry.max_value is None
        assert re.fullmatch(r"\[[^\[\]]*\]", entry.allowed_string_values)
        if entry.enum_values:
            assert entry.default_value in entry.enum_values


def test_each_name_has_at_most_one_entry_per_version() -> None:
    for version in PROBE_VERSIONS:
        found = [entry.name for entry in catalog.catalog(version)]
        assert len(found) == len(set(found)), version


def test_passwords_are_secret_and_have_no_default() -> None:
    secrets = {entry.name for entry in catalog.catalog() if entry.secret}
    assert {"obproxy_sys_password", "observer_sys_password", "observer_sys_password1"} <= secrets
    for entry in catalog.catalog():
        assert entry.secret == entry.name.endswith(("_password", "_password1"))
        if entry.secret:
            assert entry.default_value == ""


def test_the_startup_parameters_of_the_ocp_guide_are_startup_parameters() -> None:
    for name in (
        "listen_port",
        "prometheus_listen_port",
        "app_name",
        "rootservice_list",
        "rootservice_cluster_name",
        "obproxy_config_server_url",
        "work_thread_num",
        "enable_strict_kernel_release",
    ):
        found = get(name)
        assert found is not None and found.startup, name
    assert must_get("rpc_listen_port", "4.3.1.0").startup
    for name in ("syslog_level", "client_max_connections", "proxy_mem_limited"):
        assert not must_get(name).startup


def test_ids_are_stable_positions() -> None:
    first = catalog.catalog()
    assert [entry.id for entry in catalog.catalog("4.3.1.0")] == [
        entry.id for entry in first if entry.available_in("4.3.1.0")
    ]
    assert first[0].name < first[-1].name  # the generator orders by name


# --- versions ------------------------------------------------------------------------------


def test_parse_version() -> None:
    assert parse_version("4.2.3.0") == (4, 2, 3, 0)
    assert parse_version("1.9.1") == (1, 9, 1)
    assert parse_version(" 4.2.3.0-3 ") == (4, 2, 3, 0)
    for bad in ("", "four", "4.x", "obproxy 4.2"):
        with pytest.raises(ValueError):
            parse_version(bad)
    with pytest.raises(ValueError):
        catalog.catalog("latest")


def test_a_version_is_read_with_the_newest_source_not_newer_than_it() -> None:
    assert catalog.source_version("4.2.3.0") == "4.2.3"
    assert catalog.source_version("4.2.2") == "4.2.1"
    assert catalog.source_version("4.3.0") == "4.2.3"
    assert catalog.source_version("4.3.5.0-1") == "4.3.1"
    assert catalog.source_version("3.2.3.5") == "3.2.3.5"
    # Older than every source (OCP's own example): the oldest.
    assert catalog.source_version("1.9.1") == "3.2.3"


def test_catalog_filters_by_version() -> None:
    everything = {entry.name for entry in catalog.catalog()}
    old = {entry.name for entry in catalog.catalog("4.2.1.0")}
    new = {entry.name for entry in catalog.catalog("4.3.1.0")}
    assert {"rpc_listen_port", "enable_obproxy_rpc_service", "client_session_id_version"} <= new
    assert not {"rpc_listen_port", "client_session_id_version"} & old
    assert old < everything and new < everything
    assert {"listen_port", "syslog_level"} <= {e.name for e in catalog.catalog("1.9.1")}


def test_get_picks_the_entry_of_the_version_and_the_newest_without_one() -> None:
    old = get("proxy_id", "4.2.1.0")
    new = get("proxy_id", "4.2.3.0")
    assert old is not None and new is not None
    assert (old.max_value, old.startup) == ("255", True)
    assert (new.max_value, new.startup) == ("8191", False)
    assert get("proxy_id") == new
    assert get(" Syslog_Level ") == get("syslog_level")
    assert get("no_such_parameter") is None


def test_log_levels_depend_on_the_version() -> None:
    assert value_of("syslog_level", "wdiag", "4.2.3.0") == "WDIAG"
    assert "is not one of DEBUG, TRACE, INFO, WARN, USER_ERR, ERROR" in error_of(
        "syslog_level", "WDIAG", "4.2.1.0"
    )


def test_same_value_reads_spellings_as_obproxy_does() -> None:
    same = catalog.same_value
    assert same(must_get("proxy_mem_limited"), "2G", "2GB")
    assert same(must_get("proxy_mem_limited"), "2048MB", "2G")
    assert same(must_get("config_server_refresh_interval"), "1m", "60s")
    assert same(must_get("enable_reroute"), "False", "false")
    assert not same(must_get("proxy_mem_limited"), "2G", "3G")
    assert not same(must_get("proxy_route_policy"), "a", "b")


# --- values, type by type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", "true"), ("FALSE", "false"), ("True", "true"), ("on", "true"), ("0", "false")],
)
def test_bool_values(text: str, expected: str) -> None:
    assert value_of("enable_cluster_checkout", text) == expected


@pytest.mark.parametrize("text", ["", "maybe", "2", "truee"])
def test_bad_bool_values(text: str) -> None:
    assert "is not a boolean: use true or false" in error_of("enable_cluster_checkout", text)


def test_int_values() -> None:
    assert value_of("client_max_connections", "70") == "70"
    assert value_of("client_max_connections", " 010 ") == "10"  # decimal, not octal
    assert value_of("client_max_connections", "+0") == "0"
    assert value_of("partition_location_expire_relative_time", "-5") == "-5"
    assert value_of("client_max_connections", "70000") == "70000"  # [0,]: no maximum
    assert error_of("net_accept_threads", "9") == "'net_accept_threads': 9 is above the maximum 8"
    assert error_of("client_max_connections", "-1") == (
        "'client_max_connections': -1 is below the minimum 0"
    )
    for bad in ("8.5", "0x10", "1e3", "ten", "", "1_000"):
        assert "is not an integer" in error_of("client_max_connections", bad)
    assert "64-bit" in error_of("max_syslog_file_count", "9" * 30)


def test_double_values() -> None:
    ratio = info("DOUBLE", min_value="0", max_value="100")
    assert validate_value(ratio, "50") == "50.0"
    assert validate_value(ratio, " 0.25 ") == "0.25"
    assert validate_value(ratio, "1e1") == "10.0"
    for bad in ("abc", "nan", "inf", "1,5", ""):
        with pytest.raises(ParameterError, match="is not a number"):
            validate_value(ratio, bad)
    with pytest.raises(ParameterError, match="above the maximum 100"):
        validate_value(ratio, "100.5")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GB", "1GB"),
        ("4g", "4GB"),
        ("512MB", "512MB"),
        ("512m", "512MB"),
        ("2048", "2048MB"),  # OBProxy reads a bare number as MB
        ("1048576K", "1048576KB"),
        ("1073741824b", "1073741824B"),
    ],
)
def test_capacity_values(text: str, expected: str) -> None:
    assert value_of("proxy_mem_limited", text) == expected


def test_bad_capacity_values() -> None:
    for bad in ("1.5G", "2X", "G", "-1G", "", "1PB"):
        assert "is not a capacity such as 512MB or 2GB" in error_of("proxy_mem_limited", bad)
    assert error_of("proxy_mem_limited", "99MB") == (
        "'proxy_mem_limited': 99MB is below the minimum 100MB"
    )
    assert "above the maximum 100G" in error_of("proxy_mem_limited", "101G")
    assert value_of("proxy_mem_limited", "102400MB") == "102400MB"  # exactly 100G
    assert value_of("log_dir_size_threshold", "1 tb") == "1TB"
    assert "above the maximum 1T" in error_of("log_dir_size_threshold", "1025G")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10s", "10s"), ("1000ms", "1000ms"), ("1h", "1h"), ("5M", "5m"), ("30", "30s")],
)
def test_time_values(text: str, expected: str) -> None:
    assert value_of("prometheus_sync_interval", text) == expected


def test_more_time_values() -> None:
    assert value_of("cluster_expire_time", "1d") == "1d"
    assert value_of("cluster_expire_time", "100us") == "100us"
    assert value_of("cluster_expire_time", "3650d") == "3650d"  # no upper bound
    for bad in ("10 sec", "-1s", "1w", "1.5s", "s", ""):
        assert "is not a duration such as 100ms" in error_of("prometheus_sync_interval", bad)
    assert "below the minimum 1s" in error_of("prometheus_sync_interval", "999ms")
    assert "above the maximum 1h" in error_of("prometheus_sync_interval", "61m")


def test_string_list_values() -> None:
    assert value_of("rootservice_list", "10.0.0.1:2881;10.0.0.2:2881") == (
        "10.0.0.1:2881;10.0.0.2:2881"
    )
    # Commas become OBProxy's own separator, so a list can never add -o items.
    assert value_of("rootservice_list", "10.0.0.1:2881, 10.0.0.2:2881") == (
        "10.0.0.1:2881;10.0.0.2:2881"
    )
    assert value_of("rootservice_list", "") == ""
    assert value_of("username_separator", ":;-;.") == ":;-;."
    assert "has an empty item" in error_of("rootservice_list", "10.0.0.1:2881;;10.0.0.2:2881")
    assert "command line" in error_of("rootservice_list", "10.0.0.1:2881;'x'")


def test_moment_values() -> None:
    moment = info("MOMENT")
    assert validate_value(moment, "disable") == "disable"
    assert validate_value(moment, "DISABLE") == "disable"
    assert validate_value(moment, "2:00") == "02:00"
    assert validate_value(moment, "23:59") == "23:59"
    for bad in ("24:00", "12:60", "noon", "12", "12:5", ""):
        with pytest.raises(ParameterError, match="is not a time of day such as 02:00"):
            validate_value(moment, bad)


def test_enum_values() -> None:
    assert value_of("proxy_service_mode", "Server") == "server"
    assert value_of("syslog_level", "info") == "INFO"
    assert error_of("syslog_level", "LOUD") == (
        "'syslog_level': 'LOUD' is not one of DEBUG, TRACE, WDIAG, EDIAG, INFO, WARN,"
        " USER_ERR, ERROR"
    )


def test_free_strings_must_be_command_line_safe() -> None:
    assert value_of("app_name", " my_app ") == "my_app"
    assert value_of("obproxy_config_server_url", "") == ""
    url = "http://10.0.0.9:8080/services?Action=GetObProxyConfig&x=1"
    assert value_of("obproxy_config_server_url", url) == url
    for bad in ("a,b", "a'b", 'a"b', "a\\b", "a`b"):
        message = error_of("app_name", bad)
        assert message.startswith("'app_name': ") and "-o k=v,k=v" in message
    for bad in ("a\nb", "a\rb", "a\tb", "a\x00b"):
        assert "control character" in error_of("app_name", bad)
    assert "4095-byte limit" in error_of("app_name", "x" * 4096)


def test_command_line_safe() -> None:
    assert command_line_safe("10.0.0.1:2881;10.0.0.2:2881")
    assert command_line_safe("http://cs/services?Action=GetObProxyConfig")
    assert command_line_safe("")
    for bad in (",", "'", '"', "\\", "\n", "\r", "\x00", "\x7f", "a,syslog_level=DEBUG"):
        assert not command_line_safe(bad)


def test_secrets_are_kept_as_typed_and_never_shown() -> None:
    password = " p@ss,wo'rd "
    assert runtime(("observer_sys_password", password)) == [("observer_sys_password", password)]
    with pytest.raises(ParameterError) as caught:
        runtime(("obproxy_sys_password", "secret\nvalue"))
    assert "control character" in str(caught.value)
    assert "secret" not in str(caught.value).replace("obproxy_sys_password", "")


# --- a request's lists ---------------------------------------------------------------------


def test_valid_lists_come_back_canonical() -> None:
    assert startup(
        ("listen_port", "2883"),
        ("Work_Thread_Num", "8"),
        ("rootservice_list", "10.0.0.1:2881,10.0.0.2:2881"),
        version="4.2.3.0",
    ) == [
        ("listen_port", "2883"),
        ("work_thread_num", "8"),
        ("rootservice_list", "10.0.0.1:2881;10.0.0.2:2881"),
    ]
    assert runtime(("syslog_level", "warn"), ("proxy_mem_limited", "4g")) == [
        ("syslog_level", "WARN"),
        ("proxy_mem_limited", "4GB"),
    ]
    assert runtime() == []


def test_value_errors_name_the_field_and_index() -> None:
    with pytest.raises(ParameterError) as caught:
        runtime(("syslog_level", "INFO"), ("syslog_level_x", "1"))
    assert str(caught.value).startswith("parameters[1] 'syslog_level_x' is not an OBProxy")
    with pytest.raises(ParameterError) as caught:
        runtime(("enable_cluster_checkout", "false"), ("syslog_level", "LOUD"))
    assert str(caught.value).startswith("parameters[1] 'syslog_level': 'LOUD' is not one of ")
    assert caught.value.parameter == "syslog_level"


def test_a_startup_parameter_in_the_runtime_list() -> None:
    with pytest.raises(ParameterError) as caught:
        runtime(("listen_port", "2883"))
    assert str(caught.value) == (
        "parameters[0] 'listen_port' is a startup parameter: put it in startupParameters"
    )


def test_a_runtime_parameter_in_the_startup_list() -> None:
    with pytest.raises(ParameterError) as caught:
        startup(("listen_port", "2883"), ("syslog_level", "INFO"))
    assert str(caught.value) == (
        "startupParameters[1] 'syslog_level' is a runtime parameter: put it in parameters"
    )


def test_placement_can_depend_on_the_version() -> None:
    assert startup(("proxy_id", "7"), version="4.2.1.0") == [("proxy_id", "7")]
    assert runtime(("proxy_id", "7000"), version="4.3.1.0") == [("proxy_id", "7000")]
    with pytest.raises(ParameterError, match=r"is a runtime parameter in OBProxy 4\.3\.1\.0"):
        startup(("proxy_id", "7"), version="4.3.1.0")
    with pytest.raises(ParameterError, match="7000 is above the maximum 255"):
        startup(("proxy_id", "7000"), version="4.2.1.0")


def test_unknown_names() -> None:
    with pytest.raises(ParameterError) as caught:
        runtime(("foo", "1"))
    assert str(caught.value) == "parameters[0] 'foo' is not an OBProxy parameter"
    with pytest.raises(ParameterError, match=r"did you mean 'rootservice_cluster_name'\?"):
        startup(("cluster_name", "ob1"))
    with pytest.raises(ParameterError, match=r"did you mean 'syslog_level'\?"):
        runtime(("syslog_levle", "INFO"))
    # A name that would smuggle an extra -o item is just an unknown name.
    with pytest.raises(ParameterError, match="is not an OBProxy parameter"):
        runtime(("syslog_level=DEBUG,app_name", "x"))
    for empty in ("", "  "):
        with pytest.raises(ParameterError, match=r"parameters\[0\] has no parameter name"):
            runtime((empty, "x"))


def test_a_parameter_missing_from_the_version() -> None:
    with pytest.raises(ParameterError) as caught:
        startup(("rpc_listen_port", "2885"), version="4.2.1.0")
    assert str(caught.value) == (
        "startupParameters[0] 'rpc_listen_port' is not a parameter of OBProxy 4.2.1.0"
        " (it is in 4.3.1) (did you mean 'listen_port'?)"
    )
    # A version between sources is named, and so is the source it is read with.
    with pytest.raises(ParameterError) as caught:
        runtime(("enable_full_link_trace", "true"), version="4.2.4.0")
    assert str(caught.value) == (
        "parameters[0] 'enable_full_link_trace' is not a parameter of OBProxy 4.2.4.0"
        " (it is in 4.3.1; obfleet knows 4.2.4.0 by the parameters of 4.2.3)"
        " (did you mean 'enable_trace'?)"
    )
    assert startup(("rpc_listen_port", "2885"), version="4.3.1.0") == [("rpc_listen_port", "2885")]


def test_duplicates_are_an_error() -> None:
    with pytest.raises(ParameterError) as caught:
        runtime(("syslog_level", "INFO"), ("proxy_mem_limited", "2G"), ("SYSLOG_LEVEL", "WARN"))
    assert str(caught.value) == ("parameters[2] 'syslog_level' is given twice (also parameters[0])")


def test_readonly_parameters_cannot_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = info("INT", id=1, name="fixed_thing", readonly=True, default_value="1")
    monkeypatch.setattr(catalog, "_entries", lambda: (fixed,))
    monkeypatch.setattr(catalog, "_by_name", lambda: {fixed.name: (fixed,)})
    with pytest.raises(ParameterError) as caught:
        runtime(("fixed_thing", "2"))
    assert str(caught.value) == "parameters[0] 'fixed_thing' is read-only"
