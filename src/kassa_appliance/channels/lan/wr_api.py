"""Atol Web Requests v2 (``/api/v2/…``) and the legacy paths (``/requests``, ``/stat/requests``).

Behaviour re-implemented from the scenarios of avb56/kktsite-agent ``test/agent.test.js``
and ``src/device.js`` (recorded against Web Requests 1.0.4.0) and atol-notes §3: 201 with
``{number, uuid, isBlocked, blockedUUID, blockReason}``; 404 for an unknown uuid or device;
409 for a duplicate uuid, for cancelling a started request and for a device that is not
active; 400 with Atol's messages for a malformed body. The appliance has one register:
device ``1`` (also ``default``), the default device.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kassa_appliance.channels.lan.bodies import BadBody, LanContext, read_json
from kassa_appliance.channels.lan.ids import client_id_problem, query_job_id
from kassa_appliance.channels.lan.queue import SOURCE, NotCancellable
from kassa_appliance.channels.lan.store import StoredRequest
from kassa_appliance.channels.lan.wr_shapes import (
    DEFAULT_SETTINGS,
    DEVICE_ALIASES,
    DEVICE_ID,
    block_fields,
    device,
    device_parameters_struct,
    error_body,
    job_error,
    mapping,
    result_entry,
    server_info,
    settings_problem,
)
from kassa_appliance.fiscal.journal import JobNotCancellable, JobState
from kassa_appliance.registers.base import FISCAL_TASK_TYPES

OPERATIONS = {
    "queryDeviceStatus": "getDeviceStatus",
    "queryDeviceInfo": "getDeviceInfo",
    "queryShiftStatus": "getShiftStatus",
    "queryShiftTotals": "getShiftTotals",
    "queryFnInfo": "getFnInfo",
    "queryFnStatus": "getFnStatus",
    "queryOfdExchangeStatus": "ofdExchangeStatus",
    "queryIsmExchangeStatus": "ismExchangeStatus",
    "queryLastFiscalParams": "getLastFiscalParams",
    "queryRegistrationInfo": "getRegistrationInfo",
    "queryCashDrawerStatus": "getCashDrawerStatus",
}
MAX_DEVICE_NAME = 128
HOME_PAGE = """<!doctype html><meta charset="utf-8"><title>kassa-appliance</title>
<h1>kassa-appliance</h1><p>Atol Web Requests compatible API: <code>/api/v2/</code>.
KKMServer compatible API: <code>/Execute</code>.</p>"""


class ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


class WebRequestsApi:
    def __init__(self, context: LanContext) -> None:
        self.context = context
        self.queue = context.queue

    def routes(self) -> list[web.RouteDef]:
        table: list[tuple[str, str, Any]] = [
            ("GET", "/", self.home),
            ("GET", "/api/v2/serverInfo", self.server_info),
            ("GET", "/api/v2/utils/mapping", self.mapping),
            ("GET", "/api/v2/utils/deviceParametersStruct", self.parameters_struct),
            ("GET", "/api/v2/settings", self.get_settings),
            ("PUT", "/api/v2/settings", self.put_settings),
            ("GET", "/api/v2/devices", self.list_devices),
            ("POST", "/api/v2/devices", self.add_device),
            ("GET", "/api/v2/devices/{id}", self.get_device),
            ("PUT", "/api/v2/devices/{id}", self.put_device),
            ("DELETE", "/api/v2/devices/{id}", self.delete_device),
            ("POST", "/api/v2/setDefaultDevice", self.set_default),
            ("POST", "/api/v2/activateDevice", self.activate),
            ("POST", "/api/v2/deactivateDevice", self.deactivate),
            ("POST", "/api/v2/requests", self.add_request),
            ("GET", "/api/v2/requests/{uuid:.+}", self.get_request),
            ("DELETE", "/api/v2/requests/{uuid:.+}", self.cancel_request),
            ("GET", "/api/v2/getRequestsQueueStatus", self.queue_status),
            ("POST", "/api/v2/operations/{name}", self.operation),
            ("POST", "/requests", self.add_request),
            ("GET", "/requests/{uuid:.+}", self.get_request),
            ("DELETE", "/requests/{uuid:.+}", self.cancel_request),
            ("GET", "/stat/requests", self.legacy_stat),
        ]
        routes = []
        for method, path, handler in table:
            wrapped = self._guarded(handler)
            routes.append(web.route(method, path, wrapped))
            if path != "/" and "{" not in path:
                routes.append(web.route(method, path + "/", wrapped))
        return routes

    @staticmethod
    def _guarded(handler: Any) -> Any:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await handler(request)
            except ApiError as error:
                return _json(error_body(error.description), error.status)
            except BadBody as error:
                return _json(error_body(f"Некорректный JSON в теле запроса: {error}"), 400)
            return response

        return run

    # -- helpers -----------------------------------------------------------------------

    def _device_id(self, request: web.Request, body: Any = None) -> str:
        given = request.query.get("deviceID") or request.headers.get("deviceID") or ""
        if not given and isinstance(body, dict) and isinstance(body.get("deviceID"), str):
            given = body["deviceID"]
        if given not in DEVICE_ALIASES:
            raise ApiError(404, f"Устройство с ID [{given[:100]}] не найдено")
        return DEVICE_ID

    def _require_active(self) -> None:
        if not self.context.state.active:
            raise ApiError(409, f"ККТ [{DEVICE_ID}] не подключена")

    def _device(self) -> dict[str, Any]:
        return device(
            name=self.context.state.name,
            usb_path=self.context.usb_path,
            active=self.context.state.active,
            block=self.queue.block(),
            status=self.queue.engine.status(),
        )

    def _results(self, stored: StoredRequest) -> dict[str, Any]:
        status = self.queue.engine.status()
        return {"results": [result_entry(v, status) for v in self.queue.subtasks(stored)]}

    def _stored(self, request: web.Request) -> StoredRequest:
        self._device_id(request)
        uuid = request.match_info["uuid"]
        stored = self.queue.store.get("wr", uuid)
        if stored is None:
            raise ApiError(
                404, f"Задание с UUID [{uuid[:100]}] для устройства [{DEVICE_ID}] не найдено"
            )
        return stored

    # -- server, settings, devices -----------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=HOME_PAGE,
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"},
        )

    async def server_info(self, request: web.Request) -> web.StreamResponse:
        return _json(server_info(self.queue.engine.status().register))

    async def mapping(self, request: web.Request) -> web.StreamResponse:
        return _json(mapping())

    async def parameters_struct(self, request: web.Request) -> web.StreamResponse:
        return _json(device_parameters_struct())

    async def get_settings(self, request: web.Request) -> web.StreamResponse:
        return _json(dict(self.context.state.settings))

    async def put_settings(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request, empty={})
        if not isinstance(body, dict):
            raise ApiError(400, "Ожидается объект настроек")
        changed = dict(self.context.state.settings)
        for key, value in body.items():
            if key not in DEFAULT_SETTINGS:
                continue
            problem = settings_problem(key, value)
            if problem is not None:
                raise ApiError(400, problem)
            changed[key] = value
        self.context.state.settings = changed
        self.context.state.save()
        return _json({})

    async def list_devices(self, request: web.Request) -> web.StreamResponse:
        return _json([self._device()])

    async def add_device(self, request: web.Request) -> web.StreamResponse:
        await read_json(request)
        raise ApiError(409, "У этого устройства одна ККТ (ID [1]); добавить другую нельзя")

    async def get_device(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] not in DEVICE_ALIASES:
            raise ApiError(404, f"Устройство с ID [{request.match_info['id'][:100]}] не найдено")
        return _json(self._device())

    async def put_device(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request, empty={})
        if request.match_info["id"] not in DEVICE_ALIASES:
            raise ApiError(404, f"Устройство с ID [{request.match_info['id'][:100]}] не найдено")
        if not isinstance(body, dict):
            raise ApiError(400, "Ожидается объект с описанием ККТ")
        name = body.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_DEVICE_NAME:
                raise ApiError(400, "Некорректное значение или тип поля 'name'")
            self.context.state.name = name
            self.context.state.save()
        return _json(self._device())

    async def delete_device(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] not in DEVICE_ALIASES:
            raise ApiError(404, f"Устройство с ID [{request.match_info['id'][:100]}] не найдено")
        raise ApiError(409, "ККТ этого устройства удалить нельзя")

    async def set_default(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request, empty={})
        given = body.get("id") if isinstance(body, dict) else None
        if not isinstance(given, str) or given not in DEVICE_ALIASES - {""}:
            shown = given if isinstance(given, str) else ""
            raise ApiError(404, f"Устройство с ID [{shown[:100]}] не найдено")
        return _json({})

    async def activate(self, request: web.Request) -> web.StreamResponse:
        return await self._set_active(request, True)

    async def deactivate(self, request: web.Request) -> web.StreamResponse:
        return await self._set_active(request, False)

    async def _set_active(self, request: web.Request, active: bool) -> web.StreamResponse:
        body = await read_json(request, empty={})
        self._device_id(request, body)
        if self.context.state.active != active:
            self.context.state.active = active
            self.context.state.save()
        return _json({})

    # -- the queue ---------------------------------------------------------------------

    async def add_request(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request, empty={})
        self._device_id(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Ожидается объект задания: {uuid, request}")
        uuid = body.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise ApiError(400, "Поле 'uuid' не задано")
        problem = client_id_problem(uuid)
        if problem is not None:
            raise ApiError(400, f"Некорректное значение поля 'uuid': {problem}")
        tasks = body.get("request")
        if isinstance(tasks, dict):
            tasks = [tasks]
        if not isinstance(tasks, list) or not tasks:
            raise ApiError(400, "Поле 'request' не задано или пустое")
        for index, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                raise ApiError(400, f"Задача request[{index}]: не задано поле 'type'")
        if sum(1 for task in tasks if task["type"] in FISCAL_TASK_TYPES) > 1:
            raise ApiError(400, "Too many fiscal sub-tasks: в задании не больше одной фискальной")
        if self.queue.store.get("wr", uuid) is not None:
            raise ApiError(
                409,
                f"Не удалось добавить задание с UUID [{uuid[:100]}], задание с таким UUID уже есть",
            )
        self._require_active()
        stored, created = self.queue.submit("wr", uuid, tasks, {"remote": request.remote})
        if not created:
            raise ApiError(
                409,
                f"Не удалось добавить задание с UUID [{uuid[:100]}], задание с таким UUID уже есть",
            )
        return _json({"number": stored.seq, "uuid": uuid, **block_fields(self.queue.block())}, 201)

    async def get_request(self, request: web.Request) -> web.StreamResponse:
        return _json(self._results(self._stored(request)))

    async def cancel_request(self, request: web.Request) -> web.StreamResponse:
        stored = self._stored(request)
        try:
            self.queue.cancel(stored, by=f"LAN client {request.remote}")
        except NotCancellable:
            raise ApiError(
                409,
                f"Задание с UUID [{stored.client_id[:100]}] для устройства [{DEVICE_ID}] нельзя "
                "отменить (выполнено, выполняется или уже отменено)",
            ) from None
        return _json({})

    def _counts(self) -> dict[str, Any]:
        counts = self.queue.store.counts("wr")
        return {
            "number": self.queue.engine.journal.pending_count(),
            "ready": counts["ready"],
            "canceled": counts["canceled"],
        }

    async def queue_status(self, request: web.Request) -> web.StreamResponse:
        self._device_id(request)
        return _json({**self._counts(), **block_fields(self.queue.block())})

    async def legacy_stat(self, request: web.Request) -> web.StreamResponse:
        counts, block = self._counts(), self.queue.block()
        return _json(
            {
                "ready_count": counts["ready"],
                "not_ready_count": counts["number"],
                "canceled_count": counts["canceled"],
                "is_blocked": block.is_blocked,
                "block_request_uuid": block.client_id,
                "block_reason": block.reason,
            }
        )

    # -- synchronous operations --------------------------------------------------------

    async def operation(self, request: web.Request) -> web.StreamResponse:
        await read_json(request)
        self._device_id(request)
        name = request.match_info["name"]
        task_type = OPERATIONS.get(name)
        if task_type is None:
            return _json(error_body(f"Операция {name[:100]} не поддерживается"), 501)
        self._require_active()
        return await self.run_query({"type": task_type})

    async def run_query(self, task: dict[str, Any]) -> web.StreamResponse:
        """A query as a journal job of its own (only the engine talks to the register),
        answered when it is done or after ``operation_timeout``."""
        engine = self.queue.engine
        job_id = query_job_id()
        engine.journal.submit(job_id, task, source=SOURCE)
        engine.wake()
        job = await engine.wait_for(job_id, timeout=self.context.operation_timeout)
        if job.state is JobState.RECEIVED:
            try:
                engine.journal.cancel(job_id, by="LAN API: no answer in time")
            except JobNotCancellable:
                pass
            raise ApiError(503, "ККТ не ответила вовремя: очередь занята или ККТ недоступна")
        if job.state is JobState.FAILED:
            code, description = job_error(job)
            return _json({"error": {"code": code, "description": description}}, 400)
        if not job.state.is_final:
            raise ApiError(503, "ККТ не ответила вовремя")
        return _json(job.result or {})
