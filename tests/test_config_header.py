"""Reading OBProxy's ob_proxy_config.h (obproxy/config_header.py) and the generator that turns the
release headers into parameter_catalog.json (scripts/gen_parameter_catalog.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from obfleet.obproxy import catalog
from obfleet.obproxy.config_header import parse_header

ROOT = Path(__file__).resolve().parent.parent
# Written in the header's own macro forms; the values are made up.
EXCERPT = r"""
class ObProxyConfig : public common::ObCommonConfig
{
public:
  // FIXME: DEF_INT can not compare with 0(<, >, >=, <=)
  DEF_BOOL(enable_thing, "true", "whether to do the thing", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_GLOBAL);
  DEF_BOOL(refresh_thing, "false", "a trigger", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_MEMORY);
  DEF_INT(wait_us, "30000000", "[-1,86400000000]", "graceful exit timeout, unit is us, "
                                             "-1 means no timeout", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_GLOBAL);
  DEF_BOOL(lru_thing, "false",
        "if client connections reach throttle, 80%% of them", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS, CFG_MULTI_LEVEL_GLOBAL);
  DEF_INT(port, "2885", "(1024,65536)", "listen port, \"quoted\"", CFG_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS, CFG_MULTI_LEVEL_GLOBAL);
  DEF_INT(no_range, "1024", "0 means default", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS);
  DEF_TIME(interval, "60s", "[1s,]", "interval, [1s, +]", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_VIP);
  DEF_CAP(mem, "2G", "[100MB,100G]", "memory", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_GLOBAL);
  DEF_LOG_LEVEL(syslog_level, "WDIAG", "specifies the level: DEBUG, TRACE, WDIAG, INFO", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_GLOBAL);
  DEF_STR(no_level, "", "format: a:b", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_MULTI_LEVEL_VIP);
  DEF_STR_LIST(seps, ":;-;.", "separators", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS, CFG_MULTI_LEVEL_GLOBAL);
  DEF_IP(bound_ip, "0.0.0.0", "local bound ip(any)", CFG_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS, CFG_MULTI_LEVEL_GLOBAL);
  // DEF_INT(commented_out, "1", "[0,1]", "gone", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER);
  /* DEF_INT(block_commented, "1", "[0,1]", "gone", CFG_NO_NEED_REBOOT); */
  #ifdef ERRSIM
  DEF_STR(error_inject, "", "errsim only", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_SYS, CFG_MULTI_LEVEL_GLOBAL);
  #endif
  DEF_MOMENT(at, "disable", "a moment", CFG_NO_NEED_REBOOT, CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER);
};
"""  # noqa: E501


def test_every_macro_form_is_read() -> None:
    items = {item.name: item for item in parse_header(EXCERPT)}
    assert list(items) == [
        "enable_thing",
        "refresh_thing",
        "wait_us",
        "lru_thing",
        "port",
        "no_range",
        "interval",
        "mem",
        "syslog_level",
        "no_level",
        "seps",
        "bound_ip",
        "at",
    ]
    thing = items["enable_thing"]
    assert (thing.type, thing.default, thing.range, thing.need_reboot, thing.visibility) == (
        "BOOL",
        "true",
        None,
        False,
        "USER",
    )
    assert items["refresh_thing"].visibility == "MEMORY"
    wait = items["wait_us"]
    # Adjacent literals are one string; the unit is the one the description states.
    assert wait.description == "graceful exit timeout, unit is us, -1 means no timeout"
    assert (wait.bounds, wait.unit) == (("-1", "86400000000"), "us")
    assert items["lru_thing"].description.endswith("80%% of them")
    port = items["port"]
    assert (port.range, port.bounds, port.need_reboot) == ("(1024,65536)", ("1024", "65536"), True)
    assert port.description == 'listen port, "quoted"'
    assert (items["no_range"].range, items["no_range"].description) == (None, "0 means default")
    assert (items["interval"].bounds, items["interval"].unit) == (("1s", None), "s")
    assert (items["mem"].type, items["mem"].unit) == ("CAPACITY", "MB")
    assert items["syslog_level"].log_levels == ("DEBUG", "TRACE", "WDIAG", "INFO")
    assert items["no_level"].visibility is None
    assert items["seps"].type == "STRING_LIST"
    assert (items["bound_ip"].type, items["bound_ip"].need_reboot) == ("STRING", True)
    assert items["at"].type == "MOMENT"


def test_a_macro_it_cannot_read_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a config item"):
        parse_header('DEF_INT(x, some_constant, "info", CFG_NO_NEED_REBOOT);')
    with pytest.raises(ValueError, match="not closed"):
        parse_header('DEF_INT(x, "1", "[0,1]", "info"')


OBPROXY_GIT = Path(os.environ.get("OBFLEET_OBPROXY_GIT", "/work/.mirror/oceanbase+obproxy/repo"))


@pytest.mark.skipif(
    not OBPROXY_GIT.exists(), reason="no git directory of oceanbase/obproxy (OBFLEET_OBPROXY_GIT)"
)
def test_the_shipped_catalog_is_what_the_generator_makes_of_the_headers(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    subprocess.run(
        [sys.executable, ROOT / "scripts" / "gen_parameter_catalog.py", OBPROXY_GIT, "--out", out],
        check=True,
        capture_output=True,
    )
    shipped = resources.files("obfleet.obproxy").joinpath(catalog.DATA).read_text("utf-8")
    assert json.loads(out.read_text("utf-8")) == json.loads(shipped)
