"""Intel AMT over WS-Management: CIM_PowerManagementService.RequestPowerStateChange (2 = power on).

AMT listens on 16992 (HTTP) / 16993 (TLS) at ``/wsman`` behind HTTP Digest authentication. The
request is the one Intel's AMT SDK documents for a power-up; the answer's ``ReturnValue`` 0 means
accepted. No AMT firmware or emulator runs here: tests check these messages against recorded
request/response pairs (tests/power/test_amt.py), not against real firmware.
"""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import httpx

from consolidator.power.meters import Credentials, MeterAuthError, MeterError, split_address

AMT_PORT = 16992
AMT_TLS_PORT = 16993
POWER_ON = 2
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "pms": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService",
}
CIM = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
RETURN_VALUES = {0: "completed", 1: "not supported", 2: "unknown or unspecified error", 3: "timeout",
                 4: "failed", 5: "invalid parameter", 6: "in use", 4096: "job started",
                 0x7D4: "not permitted in the current power state"}


def power_state_change_request(to_url: str, power_state: int, message_id: str) -> bytes:
    """The SOAP envelope of RequestPowerStateChange for the AMT-managed system."""
    action = f"{CIM}/CIM_PowerManagementService/RequestPowerStateChange"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{NS['s']}" xmlns:wsa="{NS['wsa']}" xmlns:wsman="{NS['wsman']}" xmlns:pms="{NS['pms']}">
<s:Header>
<wsa:Action s:mustUnderstand="true">{action}</wsa:Action>
<wsa:To s:mustUnderstand="true">{to_url}</wsa:To>
<wsman:ResourceURI s:mustUnderstand="true">{CIM}/CIM_PowerManagementService</wsman:ResourceURI>
<wsa:MessageID s:mustUnderstand="true">uuid:{message_id}</wsa:MessageID>
<wsa:ReplyTo><wsa:Address>{ANONYMOUS}</wsa:Address></wsa:ReplyTo>
<wsman:SelectorSet>
<wsman:Selector Name="CreationClassName">CIM_PowerManagementService</wsman:Selector>
<wsman:Selector Name="Name">Intel(r) AMT Power Management Service</wsman:Selector>
<wsman:Selector Name="SystemCreationClassName">CIM_ComputerSystem</wsman:Selector>
<wsman:Selector Name="SystemName">Intel(r) AMT</wsman:Selector>
</wsman:SelectorSet>
</s:Header>
<s:Body>
<pms:RequestPowerStateChange_INPUT>
<pms:PowerState>{power_state}</pms:PowerState>
<pms:ManagedElement>
<wsa:Address>{ANONYMOUS}</wsa:Address>
<wsa:ReferenceParameters>
<wsman:ResourceURI>{CIM}/CIM_ComputerSystem</wsman:ResourceURI>
<wsman:SelectorSet>
<wsman:Selector Name="CreationClassName">CIM_ComputerSystem</wsman:Selector>
<wsman:Selector Name="Name">ManagedSystem</wsman:Selector>
</wsman:SelectorSet>
</wsa:ReferenceParameters>
</pms:ManagedElement>
</pms:RequestPowerStateChange_INPUT>
</s:Body>
</s:Envelope>
""".encode()


def parse_return_value(body: bytes) -> int:
    """ReturnValue of a RequestPowerStateChange response; a SOAP fault or odd XML raises MeterError."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise MeterError(f"AMT answered with malformed XML: {exc}") from exc
    fault = root.find(".//s:Fault", NS)
    if fault is not None:
        text = " ".join(t.strip() for t in fault.itertext() if t.strip())
        raise MeterError(f"AMT SOAP fault: {text}")
    value = root.find(".//pms:RequestPowerStateChange_OUTPUT/pms:ReturnValue", NS)
    if value is None or not (value.text or "").strip().isdigit():
        raise MeterError("AMT answer has no RequestPowerStateChange ReturnValue")
    return int(value.text.strip())  # type: ignore[union-attr]


class AmtWake:
    """Power on through Intel AMT. ``address``: ``HOST[:PORT]`` (16992 = HTTP, 16993 = HTTPS) or a URL."""

    name = "amt"

    def __init__(self, address: str, creds: Credentials, timeout_s: float = 10.0, verify: bool = True) -> None:
        if "://" in address:
            self.url = address.rstrip("/")
        else:
            host, port = split_address(address, AMT_PORT)
            scheme = "https" if port == AMT_TLS_PORT else "http"
            self.url = f"{scheme}://{host}:{port}"
        if not self.url.endswith("/wsman"):
            self.url += "/wsman"
        self.creds, self.timeout_s, self.verify = creds, timeout_s, verify

    def send(self) -> None:
        body = power_state_change_request(self.url, POWER_ON, str(uuid.uuid4()))
        auth = httpx.DigestAuth(self.creds.username, self.creds.password)
        try:
            r = httpx.post(self.url, content=body, auth=auth, timeout=self.timeout_s, verify=self.verify,
                           headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
        except httpx.HTTPError as exc:
            raise MeterError(f"AMT {self.url}: no answer ({type(exc).__name__})") from exc
        if r.status_code == 401:
            raise MeterAuthError(f"AMT {self.url}: credentials refused (401)")
        if r.status_code != 200 and b"Fault" not in r.content:
            raise MeterError(f"AMT {self.url}: HTTP {r.status_code}")
        value = parse_return_value(r.content)
        if value != 0:
            raise MeterError(f"AMT {self.url}: RequestPowerStateChange returned {value} "
                             f"({RETURN_VALUES.get(value, 'unknown')})")

    def describe(self) -> str:
        return f"Intel AMT RequestPowerStateChange(2) via {self.url}"
