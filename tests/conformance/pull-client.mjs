// Runs @bitrix24/b24jssdk's PullClient (B24PullClientManager) under Node against the
// Kassa push server emulator. Driven by tests/test_pull_conformance.py.
//
// Env: KASSA_REST_URL  - loopback URL answering {"method", "params"} POSTs with the REST
//                        envelope {"result": ...} (only pull.application.config.get is used)
//      KASSA_USER_ID   - the portal user the config belongs to
// Stdout: one JSON object per line: {"event":"connected"}, {"event":"message",...},
//         {"event":"error",...}. The process runs until killed.
import { WebSocket } from "ws";
import { B24PullClientManager } from "@bitrix24/b24jssdk";

// The SDK targets browsers: it looks for window.WebSocket, window event listeners and
// (to rule out Internet Explorer before choosing protobuf) a document.
globalThis.window = globalThis;
globalThis.document ??= { location: { href: "http://127.0.0.1/" } };
globalThis.WebSocket = WebSocket;
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

// The minimal part of a B24 instance the pull client calls: actions.v2.call.make().
const b24 = {
  actions: {
    v2: {
      call: {
        async make({ method, params }) {
          const response = await fetch(process.env.KASSA_REST_URL, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ method, params }),
          });
          const data = await response.json();
          emit({ event: "rest", method, status: response.status });
          return { getData: () => data };
        },
      },
    },
  },
};

const pull = new B24PullClientManager({
  b24,
  restApplication: "kassa",
  userId: Number(process.env.KASSA_USER_ID || "1"),
  skipStorageInit: true,
});

pull.subscribe({
  moduleId: "application",
  command: "kassa.job",
  callback: (params, extra, command) => emit({ event: "message", command, params, extra }),
});

pull
  .start()
  .then(() => {
    const url = pull.connector?.socket?.url ?? "";
    const mode = url.includes("jsonRpc=true") ? "jsonrpc" : url.includes("binaryMode=true") ? "protobuf" : "text";
    emit({ event: "connected", mode });
  })
  .catch((error) => emit({ event: "error", error: String(error?.message ?? JSON.stringify(error)) }));
