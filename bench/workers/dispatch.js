// The primary worker of the benchmark's one `wrangler dev`: only the first
// config gets the HTTP port, the others are reachable through service
// bindings. The target comes in the `x-bench-target` header and the request
// goes on unchanged through that binding, so every worker under test pays
// the same hop. `null` answers here (the runtime's floor for a request),
// `hop` goes through a binding to a worker that answers at once (the floor
// plus the hop).
const BODY = JSON.stringify({ ok: true });
const TARGETS = {
  forward: "FORWARD",
  twofetch: "TWOFETCH",
  samework: "SAMEWORK",
  "samework-failover": "SAMEWORK_FAILOVER",
  f3dx: "F3DX",
  "f3dx-failover": "F3DX_FAILOVER",
  hop: "NULL",
  // The streaming session's (bench/cfworker.py StreamWranglerBench).
  pipe: "PIPE",
  "pipe-slow": "PIPE_SLOW",
  "f3dx-stream": "F3DX_STREAM",
  "f3dx-stream-slow": "F3DX_STREAM_SLOW",
};

export default {
  async fetch(request, env) {
    const target = request.headers.get("x-bench-target");
    if (target === "null") {
      return new Response(BODY, { headers: { "content-type": "application/json" } });
    }
    const binding = TARGETS[target];
    if (!binding || !env[binding]) {
      return new Response(`unknown x-bench-target: ${target}`, { status: 404 });
    }
    return env[binding].fetch(request);
  },
};
