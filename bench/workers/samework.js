// A plain JavaScript worker that does the work the f3dx worker does for a
// call, no less: what any worker doing a router's job costs in this runtime
// (context for the f3dx rows; the targets stay against forward.js and
// twofetch.js). Per call: read the request body and JSON.parse it,
// JSON.stringify it again; per attempt, fetch the upstream with an
// AbortController and a 10 s timer that aborts (cleared after), read the
// answer whole and JSON.parse it; a 429 or 5xx is a failed attempt (its error
// message read) and the next provider is tried; a 2xx must carry a `choices`
// array, and is answered as a new Response, JSON.stringify of the parsed
// answer, with the x-f3dx-provider and x-f3dx-attempts headers.
//
// PROVIDERS picks the upstreams, in order: "ok" (one call, like f3dx with one
// provider) or "fail,ok" (a failover, like f3dx with [429, ok]). OK_URL and
// FAIL_URL are base URLs (.../v1).
const TIMEOUT_MS = 10000;

function reply(status, value, provider, attempts) {
  const headers = { "content-type": "application/json", "x-f3dx-attempts": String(attempts) };
  if (provider) headers["x-f3dx-provider"] = provider;
  return new Response(JSON.stringify(value), { status, headers });
}

export default {
  async fetch(request, env) {
    const urls = { ok: env.OK_URL, fail: env.FAIL_URL };
    const names = (env.PROVIDERS || "ok").split(",");
    const payload = JSON.stringify(JSON.parse(await request.text()));
    let attempts = 0;
    let last = "no provider";
    for (const name of names) {
      attempts += 1;
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
      let status, answer;
      try {
        const r = await fetch(urls[name] + "/chat/completions", {
          method: "POST",
          redirect: "manual",
          signal: ctl.signal,
          headers: { "content-type": "application/json", authorization: "Bearer " + env.API_KEY },
          body: payload,
        });
        status = r.status;
        answer = JSON.parse(await r.text());
      } catch (e) {
        last = `${name}: ${e}`;
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (status >= 200 && status < 300) {
        if (!Array.isArray(answer?.choices)) {
          return reply(502, { error: { message: `${name}: no choices` } }, name, attempts);
        }
        return reply(200, answer, name, attempts);
      }
      last = `${name}: ${status}: ${answer?.error?.message}`;
      if (status !== 429 && status < 500) {
        return reply(status, { error: { message: last } }, name, attempts);
      }
    }
    return reply(502, { error: { message: last } }, null, attempts);
  },
};
