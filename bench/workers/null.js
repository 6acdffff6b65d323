// Answers at once, without any fetch: with the dispatcher's own `null`
// target, it measures the service-binding hop that every other target pays.
const BODY = JSON.stringify({ ok: true });

export default {
  async fetch() {
    return new Response(BODY, { headers: { "content-type": "application/json" } });
  },
};
