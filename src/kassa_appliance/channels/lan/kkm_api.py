"""KKMServer compatible ``POST /Execute`` and ``/Execute/sync``.

The envelope is KKMServer's (salesduck/kkmserver-types; recorded answers in
esaulkov/kkmserver's VCR cassettes): HTTP 200 always, ``Status`` 0 Ok, 1 Run, 2 Error,
3 NotFound, 4 NotRun, the text of a problem in ``Error``. ``IdCommand`` is the idempotency
key: a command sent again with the same ``IdCommand`` is not run again, its first outcome
is answered (job ``kkm:<IdCommand>``). Both paths wait up to ``Timeout`` seconds (default 60)
for the outcome; a command still queued or running then is answered Status 4 / 1, and its
result is fetched with ``GetRezult``.
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from aiohttp import web

from kassa_appliance.channels.lan.bodies import BadBody, LanContext, read_json
from kassa_appliance.channels.lan.ids import client_id_problem
from kassa_appliance.channels.lan.kkm_tasks import KkmRefused, command_task, result_fields
from kassa_appliance.channels.lan.store import StoredRequest
from kassa_appliance.channels.lan.wr_shapes import job_error
from kassa_appliance.fiscal.engine_status import DeviceFacts
from kassa_appliance.fiscal.journal import JobState

OK, RUN, ERROR, NOT_FOUND, NOT_RUN = 0, 1, 2, 3, 4
DEFAULT_TIMEOUT = 60.0
SESSION_STATES = {"closed": 1, "opened": 2, "expired": 3}


def _answer(command: str, id_command: str, context: LanContext, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Command": command,
        "Error": "",
        "Warning": "",
        "Message": "",
        "Status": OK,
        "IdCommand": id_command,
        "NumDevice": 1,
        "UnitName": context.kassa,
    }
    body.update(fields)
    return body


class KkmApi:
    def __init__(self, context: LanContext) -> None:
        self.context = context
        self.queue = context.queue

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(path, self.execute)
            for path in ("/Execute", "/Execute/", "/Execute/sync", "/Execute/sync/")
        ]

    async def execute(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request, empty={})
        except BadBody as error:
            return web.json_response(_answer("", "", self.context, Status=ERROR, Error=str(error)))
        if not isinstance(body, dict):
            problem = "Ожидается объект команды {Command, …}"
            return web.json_response(_answer("", "", self.context, Status=ERROR, Error=problem))
        return web.json_response(await self.run(body))

    async def run(self, body: dict[str, Any]) -> dict[str, Any]:
        command = body.get("Command")
        id_given = body.get("IdCommand")
        id_command = id_given if isinstance(id_given, str) else ""
        if not isinstance(command, str) or not command:
            return _answer("", id_command, self.context, Status=ERROR, Error="Не задана команда")
        device = body.get("NumDevice", 0)
        if device not in (0, 1, None, "", "0", "1"):
            shown = str(device)[:40]
            return _answer(
                command,
                id_command,
                self.context,
                Status=ERROR,
                Error=f"Устройство {shown} не найдено",
            )
        if command == "List":
            return _answer(command, id_command, self.context, ListUnit=[self._unit()])
        if command == "GetDataKKT":
            return _answer(command, id_command, self.context, Info=self._info())
        if command == "GetRezult":
            return self._rezult(id_command)
        return await self._queued(command, id_command, body)

    # -- reads -------------------------------------------------------------------------

    def _facts(self) -> DeviceFacts:
        return self.queue.engine.status().device or DeviceFacts()

    def _unit(self) -> dict[str, Any]:
        facts, status = self._facts(), self.queue.engine.status()
        return {
            "NumDevice": 1,
            "IdDevice": f"kassa-appliance-{self.context.kassa}",
            "OnOff": self.context.state.active,
            "Active": status.register_online,
            "TypeDevice": "Фискальный регистратор",
            "IdTypeDevice": "KassaAppliance",
            "IP": "",
            "NameDevice": self.context.state.name,
            "UnitName": self.context.kassa,
            "KktNumber": facts.serial or "",
            "INN": "",
            "RegNumber": facts.registration_number or "",
            "FnNumber": facts.fn_number or "",
            "InnOfd": "",
            "NameOrganization": "",
            "TaxVariant": "",
            "AddDate": "",
            "OFD_Error": "",
            "OFD_NumErrorDoc": facts.ofd_unsent or 0,
            "OFD_DateErrorDoc": facts.ofd_oldest_unsent or "0001-01-01T00:00:00",
            "FN_DateEnd": facts.fn_expiry or "",
            "FN_MemOverflowl": False,
            "FN_IsFiscal": bool(facts.registration_number),
            "PaperOver": facts.paper is False,
        }

    def _info(self) -> dict[str, Any]:
        facts = self._facts()
        return {
            "KktNumber": facts.serial or "",
            "FnNumber": facts.fn_number or "",
            "RegNumber": facts.registration_number or "",
            "Firmware_Version": facts.firmware or "",
            "SessionState": SESSION_STATES.get(facts.shift_state or "", 0),
            "SessionNumber": facts.shift_number or 0,
            "FN_DateEnd": facts.fn_expiry or "",
            "OFD_NumErrorDoc": facts.ofd_unsent or 0,
            "OFD_DateErrorDoc": facts.ofd_oldest_unsent or "0001-01-01T00:00:00",
            "PaperOver": facts.paper is False,
            "FN_IsFiscal": bool(facts.registration_number),
        }

    def _rezult(self, id_command: str) -> dict[str, Any]:
        stored = self.queue.store.get("kkm", id_command) if id_command else None
        if stored is None:
            return _answer(
                "GetRezult",
                id_command,
                self.context,
                Status=NOT_FOUND,
                Error=f"Команда с IdCommand [{id_command[:100]}] не найдена",
            )
        return _answer("GetRezult", id_command, self.context, Rezult=self._outcome(stored))

    # -- queued commands ---------------------------------------------------------------

    async def _queued(self, command: str, id_command: str, body: dict[str, Any]) -> dict[str, Any]:
        if not id_command:
            id_command = str(uuid_module.uuid4())
        problem = client_id_problem(id_command)
        if problem is not None:
            return _answer(
                command, id_command[:100], self.context, Status=ERROR, Error=f"IdCommand: {problem}"
            )
        stored = self.queue.store.get("kkm", id_command)
        if stored is None:
            if not self.context.state.active:
                return _answer(
                    command, id_command, self.context, Status=ERROR, Error="ККТ [1] не подключена"
                )
            try:
                task = command_task(command, body)
            except KkmRefused as error:
                return _answer(command, id_command, self.context, Status=ERROR, Error=str(error))
            stored, _created = self.queue.submit("kkm", id_command, [task], {"command": command})
        timeout = self._timeout(body.get("Timeout"))
        job_id = self.queue.job_id(stored, 0)
        if timeout > 0:
            await self.queue.engine.wait_for(job_id, timeout=timeout)
        return self._outcome(stored)

    def _timeout(self, raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return DEFAULT_TIMEOUT
        return max(0.0, min(float(raw), self.context.kkm_max_timeout))

    def _outcome(self, stored: StoredRequest) -> dict[str, Any]:
        command = str(stored.meta.get("command") or "")
        job = self.queue.engine.journal.get(self.queue.job_id(stored, 0))
        answer = _answer(command, stored.client_id, self.context)
        if job is None:
            if stored.canceled:
                answer.update(Status=ERROR, Error="Команда отменена")
            else:
                answer["Status"] = NOT_RUN
            return answer
        if job.state is JobState.RECEIVED:
            answer["Status"] = NOT_RUN
        elif not job.state.is_final:
            answer["Status"] = RUN
        elif job.state is JobState.FAILED:
            code, description = job_error(job)
            answer.update(Status=ERROR, Error=f"{description} (код ошибки {code})")
        else:
            answer.update(result_fields(command, job.result, job.qr))
        return answer
