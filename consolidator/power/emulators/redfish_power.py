"""sushy-emulator with a power reading: run as ``python -m consolidator.power.emulators.redfish_power --config F``.

sushy-tools' emulator serves no power resource (no Chassis/Power, PowerSubsystem or
EnvironmentMetrics; DESIGN §7). This launcher adds the classic DMTF ``Chassis/{id}/Power`` resource
(PowerControl[0].PowerConsumedWatts read from the file named by ``CONSOLIDATOR_WATTS_FILE`` in the
config) and links it from every Chassis, then runs the stock emulator unchanged otherwise. With
``CONSOLIDATOR_RESET_DELAY_S`` set, the fake driver applies resets after that many seconds instead
of its random 1-11 s (to keep tests short); everything else is sushy-tools' own code.
"""

from __future__ import annotations

import json
import re
import sys
import types

import flask
from sushy_tools.emulator import api_utils
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems import fakedriver

app = emulator.app
_CHASSIS = re.compile(r"^/redfish/v1/Chassis/([^/]+)/?$")


def _watts() -> float | None:
    path = app.config.get("CONSOLIDATOR_WATTS_FILE")
    try:
        with open(str(path)) as fh:
            return float(fh.read().strip())
    except (OSError, TypeError, ValueError):
        return None


@api_utils.returns_json  # type: ignore[untyped-decorator]
def power_resource(identity: str) -> tuple[str, int]:
    """DMTF Power.v1_5_0 with one PowerControl entry: the chassis' consumed watts."""
    app.chassis.uuid(identity)  # 404 for an unknown chassis, as the emulator does elsewhere
    path = f"/redfish/v1/Chassis/{identity}/Power"
    body = {
        "@odata.type": "#Power.v1_5_0.Power",
        "@odata.id": path,
        "Id": "Power",
        "Name": "Power",
        "PowerControl": [{
            "@odata.id": f"{path}#/PowerControl/0",
            "MemberId": "0",
            "Name": "System Power Control",
            "PowerConsumedWatts": _watts(),
            "Status": {"State": "Enabled", "Health": "OK"},
        }],
    }
    return json.dumps(body), 200


app.add_url_rule("/redfish/v1/Chassis/<identity>/Power", "consolidator_power", power_resource,
                 methods=["GET"])


@app.after_request  # type: ignore[untyped-decorator]
def link_power(response: flask.Response) -> flask.Response:
    """Add the ``Power`` link to Chassis resources so clients (sushy's ``chassis.power``) find it."""
    match = _CHASSIS.match(flask.request.path)
    if flask.request.method == "GET" and match and response.status_code == 200:
        body = json.loads(response.get_data())
        body["Power"] = {"@odata.id": f"/redfish/v1/Chassis/{match.group(1)}/Power"}
        response.set_data(json.dumps(body))
    return response


def _pin_reset_delay() -> None:
    delay = app.config.get("CONSOLIDATOR_RESET_DELAY_S")
    if delay is not None:
        fakedriver.random = types.SimpleNamespace(randint=lambda _a, _b: int(delay))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--config" in args:
        app.configure(config_file=args[args.index("--config") + 1])
    _pin_reset_delay()
    sys.exit(emulator.main())
