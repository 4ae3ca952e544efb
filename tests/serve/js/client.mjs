// The official socket.io-client as a real network peer of `runner serve`
// (driven by tests/serve/test_socketio_node.py).
// usage: node client.mjs URL TOKEN MY_SESSION OTHER_SESSION
// Prints one JSON line {"ready": ...} once both joins are acknowledged, then one JSON line
// {"events": [...]} 500 ms after handoff:initiated arrived for MY_SESSION (or after 10 s).
import { io } from "socket.io-client";

const [url, token, mine, other] = process.argv.slice(2);
const events = [];
const socket = io(url + "/agent-lifecycle", {
  auth: { token },
  transports: ["websocket"],
  reconnection: false,
  timeout: 10000,
});

function finish(code) {
  console.log(JSON.stringify({ events }));
  socket.disconnect();
  process.exit(code);
}

const giveUp = setTimeout(() => finish(1), 10000);

socket.onAny((event, data) => {
  events.push({ event, data });
  if (event === "handoff:initiated" && data && data.session_id === mine) {
    clearTimeout(giveUp);
    setTimeout(() => finish(0), 500);
  }
});

socket.on("connect_error", (err) => {
  console.log(JSON.stringify({ connect_error: err.message, data: err.data || null }));
  process.exit(2);
});

socket.on("connect", async () => {
  const joined = await socket.timeout(5000).emitWithAck("join-agent-session", { sessionId: mine });
  const refused = await socket.timeout(5000).emitWithAck("join-agent-session", { sessionId: other });
  console.log(JSON.stringify({ ready: { joined, refused } }));
});
