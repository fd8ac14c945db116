"""Ways jobs arrive and replies leave other than the Bitrix24 outbox.

Empty for now. Each channel gets a subpackage here — the Bitrix24 and MAX chat bots, the LAN
API compatible with Atol Web Requests, CRM automation — built on the fiscal core's journal and
on the Bitrix24 link's REST client, and never on ``appliance`` (the daemon wires channels in,
not the other way round).
"""
