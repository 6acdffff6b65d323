// The floor of one call in the Workers runtime: forward the chat request to
// the upstream as it came (body streamed, not parsed) and return the
// upstream's response as it is. OK_URL is the upstream's base URL (.../v1).
export default {
  async fetch(request, env) {
    return fetch(env.OK_URL + "/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + env.API_KEY },
      body: request.body,
    });
  },
};
