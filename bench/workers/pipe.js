// The floor of a streamed call in the Workers runtime: forward the chat
// request to the upstream (body streamed, not parsed) and answer with the
// upstream's body piped through as it arrives, `new Response(upstream.body,
// ...)`, with its status and content type. UPSTREAM_URL is the upstream's
// base URL (.../v1).
export default {
  async fetch(request, env) {
    const upstream = await fetch(env.UPSTREAM_URL + "/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.API_KEY },
      body: request.body,
    });
    return new Response(upstream.body, {
      status: upstream.status,
      headers: { "content-type": upstream.headers.get("content-type") || "text/event-stream" },
    });
  },
};
