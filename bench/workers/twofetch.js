// The floor of a failover in the Workers runtime: two sequential fetches,
// the first to the upstream that answers 429 (its body read, so the
// connection can be reused), the second to the one that answers 200, whose
// response is returned as it is. The request body is read once and sent
// twice. FAIL_URL and OK_URL are base URLs (.../v1).
export default {
  async fetch(request, env) {
    const body = await request.arrayBuffer();
    const init = {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.API_KEY },
      body,
    };
    const first = await fetch(env.FAIL_URL + "/chat/completions", init);
    await first.arrayBuffer();
    if (first.status !== 429 && first.status < 500) {
      return new Response(`unexpected status ${first.status} from FAIL_URL`, { status: 502 });
    }
    return fetch(env.OK_URL + "/chat/completions", init);
  },
};
