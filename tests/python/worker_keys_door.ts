// The TypeScript example (worker/examples/typescript) with one route more,
// for the shared vectors' key rotation steps on the Worker
// (test_worker_vectors.py): POST /_test/keys {"provider", "api_key"} calls
// the embedded router's setApiKey. Tests only, on 127.0.0.1: a deployed
// worker gets new keys by its own means (see the README's Worker section).
import example, { getRouter } from "../../worker/examples/typescript/src/index.ts";
import type { Env } from "../../worker/examples/typescript/src/index.ts";

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path !== "/_test/keys" || request.method !== "POST") {
      return example.fetch(request, env, ctx);
    }
    const { provider, api_key } = (await request.json()) as { provider: string; api_key: string };
    try {
      getRouter(env).setApiKey(provider, api_key);
    } catch (e) {
      return Response.json({ error: (e as Error).message }, { status: 400 });
    }
    return Response.json({ set: true });
  },
};
